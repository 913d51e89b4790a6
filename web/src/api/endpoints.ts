// Typed calls for the routes the console uses.

import { get, post, request } from './client'
import type {
  Alarm,
  AlarmQuery,
  AlarmResolution,
  AlarmSummary,
  CatalogResult,
  Channel,
  ChannelQuery,
  ChannelVqd,
  CommandResult,
  Device,
  EventQuery,
  ExportJob,
  HealthSummary,
  LiveSession,
  MaintenanceTeam,
  MapClusters,
  MapSettings,
  Me,
  Page,
  PlatformEvent,
  PlaybackSession,
  PresetAction,
  PtzAction,
  RatesAnswer,
  RatesBy,
  RecordingTimeline,
  StreamDialect,
  TokenResponse,
  TotpSetup,
  TreeLevel,
  TreeQuery,
  TrendAnswer,
  VqdDevice,
  VqdDeviceQuery,
  VqdProgress,
  VqdResult,
  VqdSettings,
  WorkOrder,
  WorkOrderOpen,
  WorkOrderQuery,
  WorstChannels,
} from './types'

const channelPath = (id: string) => `/channels/${encodeURIComponent(id)}`
const devicePath = (id: string) => `/devices/${encodeURIComponent(id)}`
const alarmPath = (id: number) => `/alarms/${id}`
const orderPath = (id: number) => `/work-orders/${id}`
const deviceQuery = (deviceId?: string) => (deviceId ? `?device_id=${encodeURIComponent(deviceId)}` : '')

export const api = {
  /** `totp`: the 6-digit code, for accounts that turned the one-time code on (the API answers totp_required). */
  login: (username: string, password: string, totp?: string) =>
    post<TokenResponse>('/auth/login', totp ? { username, password, totp } : { username, password }),
  totpSetup: (password: string) => post<TotpSetup>('/auth/totp/setup', { password }),
  totpEnable: (code: string) => post<void>('/auth/totp/enable', { code }),
  totpDisable: (password: string, code: string) => post<void>('/auth/totp/disable', { password, code }),
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

  /** A named preset of a channel's PTZ: go to it, store the current position in it, or remove it. */
  ptzPreset: (id: string, action: PresetAction, preset: number, deviceId?: string) =>
    post<CommandResult>(`${channelPath(id)}/ptz${deviceQuery(deviceId)}`, { action, preset }),

  /** Online, intactness and HD rates per group over local days [from, to] (default: today). */
  rates: (by: RatesBy, from?: string, to?: string, perClass = false, signal?: AbortSignal) =>
    get<RatesAnswer>('/rates', { by, from, to, per_class: perClass ? 'true' : undefined }, signal),
  ratesTrend: (range: { days?: number; from?: string; to?: string }, signal?: AbortSignal) =>
    get<TrendAnswer>('/rates/trend', { ...range }, signal),
  worstChannels: (from?: string, to?: string, limit = 20, signal?: AbortSignal) =>
    get<WorstChannels>('/rates/channels', { from, to, below_target: 'true', limit }, signal),

  alarms: (query: AlarmQuery, signal?: AbortSignal) => get<Page<Alarm>>('/alarms', { ...query }, signal),
  alarm: (id: number, signal?: AbortSignal) => get<Alarm>(alarmPath(id), undefined, signal),
  alarmSummary: (signal?: AbortSignal) => get<AlarmSummary>('/alarms/summary', undefined, signal),
  acknowledgeAlarm: (id: number, note: string) => post<Alarm>(`${alarmPath(id)}/acknowledge`, { note }),
  dispatchAlarm: (id: number, to: string, note: string) => post<Alarm>(`${alarmPath(id)}/dispatch`, { to, note }),
  resolveAlarm: (id: number, resolution: AlarmResolution, note: string) =>
    post<Alarm>(`${alarmPath(id)}/resolve`, { resolution, note }),
  noteAlarm: (id: number, note: string) => post<Alarm>(`${alarmPath(id)}/notes`, { note }),
  events: (query: EventQuery, signal?: AbortSignal) => get<Page<PlatformEvent>>('/events', { ...query }, signal),

  device: (id: string, signal?: AbortSignal) => get<Device>(devicePath(id), undefined, signal),
  /** Ask the device for its whole catalog; answers when it is in (up to the catalog page timeout). */
  refreshCatalog: (id: string) => post<{ ok: boolean; result: CatalogResult }>(`${devicePath(id)}/catalog`, {}, { timeoutMs: 90_000 }),
  deviceStatus: (id: string) => get<{ ok: boolean; result: Record<string, unknown> }>(`${devicePath(id)}/device-status`),
  rebootDevice: (id: string) => post<CommandResult>(`${devicePath(id)}/reboot`),

  workOrders: (query: WorkOrderQuery, signal?: AbortSignal) => get<Page<WorkOrder>>('/work-orders', { ...query }, signal),
  workOrder: (id: number, signal?: AbortSignal) => get<WorkOrder>(orderPath(id), undefined, signal),
  openWorkOrder: (body: WorkOrderOpen) => post<WorkOrder>('/work-orders', body),
  assignWorkOrder: (id: number, team: string | null, assignee: string | null, note: string) =>
    post<WorkOrder>(`${orderPath(id)}/assign`, { team: team || null, assignee: assignee || null, note }),
  startWorkOrder: (id: number, note: string) => post<WorkOrder>(`${orderPath(id)}/start`, { note }),
  repairedWorkOrder: (id: number, note: string) => post<WorkOrder>(`${orderPath(id)}/repaired`, { note }),
  cancelWorkOrder: (id: number, note: string) => post<WorkOrder>(`${orderPath(id)}/cancel`, { note }),
  noteWorkOrder: (id: number, note: string) => post<WorkOrder>(`${orderPath(id)}/notes`, { note }),
  holdWorkOrder: (id: number, note: string) => post<WorkOrder>(`${orderPath(id)}/hold`, { note }),
  resumeWorkOrder: (id: number, note: string) => post<WorkOrder>(`${orderPath(id)}/resume`, { note }),
  teams: (signal?: AbortSignal) => get<MaintenanceTeam[]>('/maintenance/teams', undefined, signal),
  createTeam: (name: string, contact: string, members: string[]) =>
    post<MaintenanceTeam>('/maintenance/teams', { name, contact, members }),
  updateTeam: (id: number, name: string, contact: string, members: string[]) =>
    request<MaintenanceTeam>('PUT', `/maintenance/teams/${id}`, { body: { name, contact, members } }),

  vqdPatrol: (signal?: AbortSignal) => get<VqdProgress>('/vqd/patrol', undefined, signal),
  runVqdRound: () => post<VqdProgress>('/vqd/patrol/run'),
  channelVqd: (id: string, limit = 20, signal?: AbortSignal) => get<ChannelVqd>(`${channelPath(id)}/vqd`, { limit }, signal),
  /** A few seconds of the channel's live video, diagnosed; with `reference` kept as its reference picture. */
  diagnoseChannel: (id: string, reference = false) =>
    post<VqdResult>(`${channelPath(id)}/vqd/diagnose`, {}, { query: reference ? { reference: 'true' } : undefined, timeoutMs: 60_000 }),
  vqdSettings: (signal?: AbortSignal) => get<VqdSettings>('/vqd/settings', undefined, signal),
  vqdDevices: (query: VqdDeviceQuery, signal?: AbortSignal) => get<Page<VqdDevice>>('/vqd/devices', { ...query }, signal),
  deviceVqd: (id: string, signal?: AbortSignal) => get<VqdDevice>(`${devicePath(id)}/vqd`, undefined, signal),
  /** An operator's selector and PTZ check for the device (null each: as configured). */
  setDeviceVqd: (id: string, dialect: StreamDialect | null, ptzCheck: boolean | null) =>
    request<VqdDevice>('PUT', `${devicePath(id)}/vqd/settings`, { body: { dialect, ptz_check: ptzCheck } }),
  /** Forget the device's sub-stream refusal: its next diagnosis asks for one again. */
  retryDeviceSubstream: (id: string) => post<VqdDevice>(`${devicePath(id)}/vqd/substream/retry`),

  mapSettings: (signal?: AbortSignal) => get<MapSettings>('/map/settings', undefined, signal),
  mapClusters: (bbox: [number, number, number, number], zoom: number, signal?: AbortSignal) =>
    get<MapClusters>('/map/clusters', { bbox: bbox.map((v) => v.toFixed(6)).join(','), zoom }, signal),
}
