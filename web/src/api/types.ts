// Shapes of the camgrid API answers the console uses (see /api/v1/openapi.json).

export interface TokenResponse {
  access_token: string
  token_type: string
  expires_at: string
  must_change_password: boolean
}

export interface Me {
  id: number
  username: string
  role: string
  permissions: string[]
  must_change_password: boolean
  token_expires_at: string
  totp_enabled?: boolean
}

/** A new one-time-code secret: scan `otpauth_uri` (a QR code) or type `secret` into the app. */
export interface TotpSetup {
  secret: string
  otpauth_uri: string
}

export type ChannelStatus = 'online' | 'offline'

export interface Channel {
  id: string
  device_id: string
  name: string
  status: ChannelStatus
  device_status: ChannelStatus
  reported_status: string
  manufacturer: string
  model: string
  civil_code: string
  address: string
  ptz_type: number | null
  point_class: number | null
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface ChannelQuery {
  q?: string
  status?: ChannelStatus
  device_id?: string
  limit?: number
  cursor?: string
}

export interface OnlineCounts {
  total: number
  online: number
  offline: number
  online_rate: number | null
}

export interface HealthSummary {
  devices: { total: number; online: number; offline: number; pending: number }
  channels: OnlineCounts
  by_point_class: Record<string, { total: number; online: number; online_rate: number | null }>
}

export interface LiveSession {
  session_id: string
  device_id: string
  channel_id: string
  state: string
  codec: string | null
  codec_string: string | null
  width: number | null
  height: number | null
  end_reason: string | null
  /** The device's sound once it has come: aac | g711a | g711u; null: none (yet). */
  audio_codec?: string | null
  ws_url: string
  hls_url: string
  link_valid_s: number
}

export type PtzAction = 'left' | 'right' | 'up' | 'down' | 'zoom_in' | 'zoom_out' | 'stop'

export interface CommandResult {
  ok: boolean
  result?: unknown
}

export interface TimeRange {
  from: string
  to: string
}

export interface RecordingTimeline {
  from: string
  to: string
  spans: TimeRange[]
  gaps: TimeRange[]
  covered_s: number
  segments: number
  bytes: number
}

export interface PlaybackSession {
  ws_url: string
  link_valid_s: number
  first_recorded: string
  codec: string | null
  width: number | null
  height: number | null
  /** The first segment's sound: aac | g711a | g711u; null: none. Browsers get no G.711. */
  audio_codec: string | null
}

/** One recording on the device's own storage (RecordInfo). */
export interface DeviceRecord {
  channel_id: string
  name: string
  file_path: string
  address: string
  start: string
  end: string
  secrecy: number
  /** time | alarm | manual | ... */
  type: string
  recorder_id: string
  file_size: number | null
}

export interface DeviceRecords {
  device_id: string
  channel_id: string
  from: string
  to: string
  expected: number | null
  received: number
  /** The device stopped sending pages before the number it announced. */
  partial: boolean
  unreadable: number
  records: DeviceRecord[]
}

/** Footage from the device's storage: its WebSocket carries fMP4 as live video does, and
 * "segment" messages that map player time to the recording's wall time. */
export interface DevicePlaybackSession {
  session_id: string
  device_id: string
  channel_id: string
  state: string
  kind: 'Playback' | 'Download'
  codec: string | null
  width: number | null
  height: number | null
  audio_codec: string | null
  end_reason: string | null
  /** The range the device was asked for (whole seconds). */
  range: TimeRange
  speed: number
  paused: boolean
  /** Who started it: theirs to control and stop (others need commands:device). */
  started_by: string | null
  ws_url: string
  link_valid_s: number
}

export type PlaybackAction = 'pause' | 'resume' | 'seek' | 'speed'

export interface PlaybackControlResult {
  session_id: string
  action: PlaybackAction
  value: number | null
  /** A seek: the recording's time it went to. */
  wall?: string
}

export interface ExportFile {
  name: string
  /** The manifest itself has neither. */
  bytes?: number
  sha256?: string
  url: string
}

export interface ExportJob {
  export_id?: string
  state: 'running' | 'done' | 'failed'
  progress?: number
  files?: ExportFile[]
  error?: string | null
}

export type TreeBy = 'region' | 'group'

/** A node of the device tree: a civil region, a business group, a virtual organisation, or the
 * node of channels that have none. */
export interface TreeNode {
  id: string
  name: string
  kind: 'region' | 'business_group' | 'virtual_org' | 'unassigned'
  total: number
  online: number
  offline: number
  has_children: boolean
}

export interface TreeLevel {
  by: TreeBy
  node: Pick<TreeNode, 'id' | 'name' | 'kind'> | null
  nodes: TreeNode[]
  channels: Page<Channel>
}

export interface TreeQuery {
  by: TreeBy
  parent?: string
  status?: ChannelStatus
  cursor?: string
  limit?: number
}

// -- rates (docs/rates.md) -------------------------------------------------------------------------

export type RatesBy = 'point_class' | 'organisation' | 'manufacturer' | 'device_type'
export type RateName = 'online_rate' | 'intactness_rate' | 'hd_rate'

export interface RateFigures {
  channels: number
  channel_days: number
  observed_hours: number
  online_rate: number | null
  intactness_rate: number | null
  hd_rate: number | null
  hd_channel_days: number
  measured_channel_days: number
  unmeasured_channel_days: number
  targets: Record<RateName, number | null>
  meets: Record<RateName, boolean | null>
}

export interface RateRow extends RateFigures {
  key: string
  name: string
  point_class?: number
}

export interface RatesAnswer {
  from: string
  to: string
  days: number
  by: RatesBy
  rows: RateRow[]
  total: RateFigures
}

export interface TrendDay extends RateFigures {
  day: string
}

export interface TrendAnswer {
  from: string
  to: string
  days: TrendDay[]
}

export interface WorstChannel {
  channel_id: string
  device_id: string
  name: string
  point_class: number | null
  observed_hours: number
  online_rate: number | null
  intactness_rate: number | null
  resolution: [number, number] | null
  hd: boolean | null
  online_target: number | null
}

export interface WorstChannels {
  from: string
  to: string
  items: WorstChannel[]
  count: number
}

// -- alarms (docs/alarms.md) -----------------------------------------------------------------------

export type AlarmState = 'open' | 'acknowledged' | 'dispatched' | 'resolved'
export type AlarmStateFilter = AlarmState | 'active' | 'all'
export type AlarmSource = 'device' | 'health' | 'vqd' | 'recording' | 'media' | 'platform'
export const ALARM_RESOLUTIONS = ['fixed', 'false_alarm', 'duplicate', 'no_action', 'other'] as const
export type AlarmResolution = (typeof ALARM_RESOLUTIONS)[number]

export interface AlarmHistoryEntry {
  id?: number
  at: string
  actor: string
  action: string
  note: string
  data: Record<string, unknown>
}

export interface Alarm {
  id: number
  type: string
  source: AlarmSource
  priority: number
  state: AlarmState
  device_id: string | null
  channel_id: string | null
  title: string
  detail: Record<string, unknown> | null
  count: number
  first_at: string
  last_at: string
  cleared_at: string | null
  acknowledged_at: string | null
  acknowledged_by: string | null
  dispatched_at: string | null
  dispatched_by: string | null
  dispatched_to: string | null
  resolved_at: string | null
  resolved_by: string | null
  resolution: string | null
  history?: AlarmHistoryEntry[]
}

export interface AlarmQuery {
  state?: AlarmStateFilter
  priority?: number
  type?: string
  source?: AlarmSource
  channel_id?: string
  device_id?: string
  since?: string
  until?: string
  cursor?: string
  limit?: number
}

export interface AlarmSummary {
  active: number
  by_state: Record<string, number>
  by_priority: Record<string, number>
}

/** One message of GET /alarms/stream. */
export interface AlarmMessage {
  event: string
  at: string
  actor: string
  note: string
  popup: boolean
  alarm: Alarm
}

export interface PlatformEvent {
  id: number
  kind: string
  subject: string
  at: string
  data: Record<string, unknown> | null
}

export interface EventQuery {
  kind?: string
  subject?: string
  cursor?: string
  limit?: number
}

// -- devices ---------------------------------------------------------------------------------------

export interface Device {
  id: string
  name: string
  manufacturer: string
  model: string
  firmware: string
  approval: string
  status: ChannelStatus
  transport: string | null
  remote_addr: string | null
  gb_version: string | null
  keepalive_interval_s: number | null
  registered_at: string | null
  last_seen_at: string | null
  status_changed_at: string | null
  channel_count: number
  catalog_partial: boolean
  catalog_at: string | null
  civil_code: string
  address: string
}

export interface CatalogResult {
  device_id: string
  items?: number
  expected?: number
  partial?: boolean
  added?: number
  removed?: number
  updated?: number
  joined_running_query?: boolean
}

export type PresetAction = 'preset_call' | 'preset_set' | 'preset_delete'

// -- maintenance (docs/maintenance.md) -------------------------------------------------------------

export type WorkOrderState = 'open' | 'assigned' | 'in_progress' | 'verifying' | 'closed' | 'cancelled'
export type WorkOrderStateFilter = WorkOrderState | 'active' | 'all'

export interface WorkOrderSla {
  respond_due_at: string
  resolve_due_at: string
  /** Seconds left (negative: overdue); null once that deadline was met. */
  respond_remaining_s: number | null
  resolve_remaining_s: number | null
  breached: ('respond' | 'resolve')[]
  /** On hold: the clocks stand still (remaining counted to when the hold began). */
  paused?: boolean
  held_s?: number
}

export interface WorkOrderHistoryEntry {
  id: number
  at: string
  actor: string
  action: string
  note: string
  data: Record<string, unknown> | null
}

export interface WorkOrder {
  id: number
  alarm_id: number | null
  type: string
  device_id: string | null
  channel_id: string | null
  title: string
  priority: number
  state: WorkOrderState
  verifiable: boolean
  team_id: number | null
  assignee: string | null
  created_at: string
  created_by: string
  assigned_at: string | null
  started_at: string | null
  repaired_at: string | null
  closed_at: string | null
  closed_by: string | null
  cancelled_at: string | null
  respond_breached: boolean
  resolve_breached: boolean
  /** On hold since (its SLA clocks paused), with what it waits for; null when not on hold. */
  on_hold_since?: string | null
  hold_reason?: string | null
  held_s?: number
  sla: WorkOrderSla
  history?: WorkOrderHistoryEntry[]
}

export interface WorkOrderQuery {
  state?: WorkOrderStateFilter
  team?: string
  assignee?: string
  breached?: 'true' | 'false'
  channel_id?: string
  device_id?: string
  cursor?: string
  limit?: number
}

export interface WorkOrderOpen {
  alarm_id?: number
  title?: string
  device_id?: string
  channel_id?: string
  priority?: number
  team?: string
  assignee?: string
  note?: string
}

export interface MaintenanceTeam {
  id: number
  name: string
  contact: string
  members: string[]
  active_orders: number
  updated_at: string
  updated_by: string
}

// -- video quality (docs/vqd-patrol.md) ------------------------------------------------------------

export interface VqdFault {
  type: string
  score: number
  severity: string
  reason?: string
}

export interface VqdRound {
  id: number
  started_at: string
  finished_at: string | null
  trigger: string
  by: string
  total: number
  diagnosed: number
  failed: number
  with_faults: number
  skipped: number
}

export interface VqdProgress {
  running: boolean
  seq?: number
  round_id?: number
  trigger?: string
  by?: string
  started_at?: string
  total?: number
  done?: number
  diagnosed?: number
  failed?: number
  with_faults?: number
  skipped?: number
  in_progress?: string[]
  last_round: (Omit<VqdRound, 'id'> & { round_id: number; seq: number }) | null
  enabled: boolean
  rounds: VqdRound[]
}

export interface VqdResult {
  id: number
  channel_id: string
  at: string
  diagnosed: boolean
  reason: string
  faults: VqdFault[]
  width?: number | null
  height?: number | null
  resolution?: [number, number] | null
  codec: string | null
  reference_made?: boolean
}

export interface ChannelVqd {
  channel_id: string
  open_faults: string[]
  last_at: string | null
  has_reference: boolean
  reference_at: string | null
  reference_by: string | null
  thresholds: Record<string, unknown>
  history: VqdResult[]
}

// -- the patrol's settings (docs/vqd-patrol.md) -----------------------------------------------------

export type StreamDialect = 'none' | 'streamnumber' | 'streamprofile' | 'stream' | 'streammode' | 'all'
/** Where a device's sub-stream selector comes from, first match wins in this order (docs/vqd-patrol.md). */
export type DialectSource = 'override' | 'device' | 'manufacturer_operator' | 'manufacturer' | 'default'

export interface VqdSettings {
  patrol: {
    patrol: boolean
    first_round_after_s: number
    round_interval_s: number
    concurrency: number
    per_device: number
    sample_s: number
    first_frame_s: number
    auto_reference: boolean
  }
  substream: {
    dialect: StreamDialect
    devices: Record<string, StreamDialect>
    manufacturers: Record<string, StreamDialect>
    retry_after_s: number
  }
  ptz_check: {
    channels: string[]
    groups: string[]
    pan_speed: number
    move_s: number
    operator_quiet_s: number
    presets: Record<string, number>
  }
  dialects: StreamDialect[]
}

export interface VqdPtzResult {
  channel_id: string
  checked: boolean
  unresponsive: boolean
  moved?: boolean
  why?: string
}

/** One device's patrol settings in effect and what the patrol learned about it. */
export interface VqdDevice {
  device_id: string
  name: string
  manufacturer: string
  status: 'online' | 'offline'
  dialect: StreamDialect
  dialect_source: DialectSource
  override: { dialect: StreamDialect | null; ptz_check: boolean | null; by: string | null; at: string | null }
  substream: {
    refused_at: string | null
    refused_dialect: string | null
    reason: string | null
    retry_due_at: string | null
    /** Asked for its main stream only (a refusal of this selector is remembered). */
    main_only: boolean
    ok_dialect: string | null
    ok_at: string | null
  }
  ptz: { channels: number; configured: string[]; checked: string[]; last_at: string | null; last: VqdPtzResult | null }
}

export interface VqdDeviceQuery {
  q?: string
  only?: 'refused' | 'overridden'
  cursor?: string
  limit?: number
}

// -- map -------------------------------------------------------------------------------------------

export interface MapCluster {
  lon: number
  lat: number
  count: number
  online: number
  offline: number
  /** The cell's extent [west, south, east, north]: a click zooms to it. */
  bounds: [number, number, number, number]
}

export interface MapPoint {
  id: string
  device_id: string
  name: string
  lon: number
  lat: number
  status: ChannelStatus
}

export interface MapClusters {
  zoom: number
  cell_deg: number
  clusters: MapCluster[]
  channels: MapPoint[]
  total: number
}

export interface MapSettings {
  tile_url: string | null
  tile_attribution: string
  located: number
  total: number
  located_share: number | null
  /** [west, south, east, north] around the located channels; null when none is. */
  bounds: [number, number, number, number] | null
}
