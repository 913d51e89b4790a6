// Typed calls for the routes the console uses.

import { get, post, request } from './client'
import type {
  Channel,
  ChannelQuery,
  CommandResult,
  HealthSummary,
  LiveSession,
  Me,
  Page,
  PtzAction,
  TokenResponse,
} from './types'

const channelPath = (id: string) => `/channels/${encodeURIComponent(id)}`
const deviceQuery = (deviceId?: string) => (deviceId ? `?device_id=${encodeURIComponent(deviceId)}` : '')

export const api = {
  login: (username: string, password: string) => post<TokenResponse>('/auth/login', { username, password }),
  logout: () => request<void>('POST', '/auth/logout', { timeoutMs: 5_000 }),
  me: () => get<Me>('/auth/me'),
  changePassword: (currentPassword: string, newPassword: string) =>
    post<void>('/auth/password', { current_password: currentPassword, new_password: newPassword }),

  channels: (query: ChannelQuery, signal?: AbortSignal) => get<Page<Channel>>('/channels', { ...query }, signal),
  channel: (id: string, deviceId?: string) => get<Channel>(channelPath(id), { device_id: deviceId }),
  healthSummary: (signal?: AbortSignal) => get<HealthSummary>('/health/summary', undefined, signal),

  /** Start or join the channel's live stream; waits up to waitS for its first key frame. */
  startLive: (id: string, deviceId?: string, waitS = 5, signal?: AbortSignal) =>
    post<LiveSession>(`${channelPath(id)}/live${deviceQuery(deviceId)}`, { wait_s: waitS },
      { signal, timeoutMs: (waitS + 15) * 1000 }),

  ptz: (id: string, action: PtzAction, deviceId?: string, speed = 128) =>
    post<CommandResult>(`${channelPath(id)}/ptz${deviceQuery(deviceId)}`,
      action === 'stop' ? { action } : { action, speed }),
}
