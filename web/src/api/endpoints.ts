// Typed calls for the routes the console uses.

import { get, post, request } from './client'
import type {
  Channel,
  ChannelQuery,
  CommandResult,
  ExportJob,
  HealthSummary,
  LiveSession,
  Me,
  Page,
  PlaybackSession,
  PtzAction,
  RecordingTimeline,
  TokenResponse,
  TreeLevel,
  TreeQuery,
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
  /** One level of the device tree: child nodes with counts, and the node's own channels. */
  tree: (query: TreeQuery, signal?: AbortSignal) => get<TreeLevel>('/tree', { ...query }, signal),
  healthSummary: (signal?: AbortSignal) => get<HealthSummary>('/health/summary', undefined, signal),

  /** Start or join the channel's live stream; waits up to waitS for its first key frame. */
  startLive: (id: string, deviceId?: string, waitS = 5, signal?: AbortSignal) =>
    post<LiveSession>(`${channelPath(id)}/live${deviceQuery(deviceId)}`, { wait_s: waitS },
      { signal, timeoutMs: (waitS + 15) * 1000 }),

  ptz: (id: string, action: PtzAction, deviceId?: string, speed = 128) =>
    post<CommandResult>(`${channelPath(id)}/ptz${deviceQuery(deviceId)}`,
      action === 'stop' ? { action } : { action, speed }),

  /** Covered spans and gaps of the platform's recordings in [from, to). */
  recordings: (id: string, from: Date, to: Date, signal?: AbortSignal) =>
    get<RecordingTimeline>(`${channelPath(id)}/recordings`, { from: from.toISOString(), to: to.toISOString() }, signal),
  /** Play the recordings from `from` at `speed` (seek or a new speed = a new request). */
  startPlayback: (id: string, from: Date, speed: number, signal?: AbortSignal) =>
    post<PlaybackSession>(`${channelPath(id)}/playback`, { from: from.toISOString(), speed }, { signal }),
  setRecordPlan: (id: string, mode: 'continuous' | 'off', deviceId?: string) =>
    request<unknown>('PUT', `${channelPath(id)}/record-plan${deviceQuery(deviceId)}`, { body: { mode } }),
  startExport: (id: string, from: Date, to: Date, reason: string) =>
    post<{ export_id: string; state: string }>(`${channelPath(id)}/exports`,
      { from: from.toISOString(), to: to.toISOString(), reason }),
  exportStatus: (exportId: string, signal?: AbortSignal) =>
    get<ExportJob>(`/exports/${encodeURIComponent(exportId)}`, undefined, signal),
}
