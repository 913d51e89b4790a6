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
