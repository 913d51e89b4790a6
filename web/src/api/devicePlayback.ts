// Calls of the device-storage playback page, apart from `api` so that they load with that page.

import { get, post, request } from './client'
import type { DevicePlaybackSession, DeviceRecords, PlaybackAction, PlaybackControlResult } from './types'

const channelPath = (id: string) => `/channels/${encodeURIComponent(id)}`
const deviceQuery = (deviceId?: string) => (deviceId ? `?device_id=${encodeURIComponent(deviceId)}` : '')

export const deviceApi = {
  /** The recordings on the device's own storage in [from, to) (RecordInfo; the device answers in pages). */
  deviceRecords: (id: string, from: Date, to: Date, deviceId?: string, signal?: AbortSignal) =>
    get<{ ok: boolean; result: DeviceRecords }>(`${channelPath(id)}/device-records`,
      { from: from.toISOString(), to: to.toISOString(), device_id: deviceId }, signal),
  /** Play [from, to) from the device's storage (a Playback INVITE); waits up to 5 s for the first picture. */
  startDevicePlayback: (id: string, from: Date, to: Date, deviceId?: string, signal?: AbortSignal) =>
    post<DevicePlaybackSession>(`${channelPath(id)}/device-playback${deviceQuery(deviceId)}`,
      { from: from.toISOString(), to: to.toISOString(), wait_s: 5 }, { signal, timeoutMs: 30_000 }),
  /** Pause, resume, seek (seconds into the range) or change the speed of a device playback. */
  controlPlayback: (sessionId: string, action: PlaybackAction, value?: number) =>
    post<PlaybackControlResult>(`/live/${encodeURIComponent(sessionId)}/control`, { action, value: value ?? null }),
  /** End a running stream for everyone (needs commands:device). */
  stopStream: (sessionId: string) => request<unknown>('DELETE', `/live/${encodeURIComponent(sessionId)}`),
}
