// The video wall's layout: how many tiles, which channel plays in each, which tile is selected.
// Kept in localStorage (per user), so leaving the wall and coming back, or a reload, shows the
// same wall; the streams themselves start again when the wall is shown.

import { reactive, watch } from 'vue'

import type { Channel, ChannelStatus } from '@/api/types'
import { session } from './session'

export const SPLITS = [1, 4, 9, 16] as const
export type Split = (typeof SPLITS)[number]
export const MAX_TILES = 16

/** What a tile needs to know of its channel (also what a drag carries). */
export interface WallChannel {
  id: string
  deviceId: string
  name: string
  status: ChannelStatus
}

export interface WallLayout {
  split: Split
  tiles: (WallChannel | null)[]
  selected: number
}

/** The drag-and-drop type of a channel dragged from the tree or a list onto a tile. */
export const CHANNEL_DRAG_TYPE = 'application/x-camgrid-channel'

export function wallChannel(channel: Channel): WallChannel {
  return { id: channel.id, deviceId: channel.device_id, name: channel.name, status: channel.status }
}

const storageKey = () => `camgrid.wall.${session.state.username ?? ''}`

function empty(): WallLayout {
  return { split: 4, tiles: Array<WallChannel | null>(MAX_TILES).fill(null), selected: 0 }
}

function valid(channel: unknown): channel is WallChannel {
  const c = channel as WallChannel | null
  return !!c && typeof c.id === 'string' && typeof c.deviceId === 'string' && typeof c.name === 'string'
}

function load(): WallLayout {
  const layout = empty()
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey()) ?? 'null') as Partial<WallLayout> | null
    if (saved && SPLITS.includes(saved.split as Split)) layout.split = saved.split as Split
    saved?.tiles?.slice(0, MAX_TILES).forEach((tile, i) => (layout.tiles[i] = valid(tile) ? tile : null))
    if (typeof saved?.selected === 'number' && saved.selected >= 0 && saved.selected < layout.split) {
      layout.selected = saved.selected
    }
  } catch {
    // A damaged entry is the same as none.
  }
  return layout
}

export const wall = reactive<WallLayout>(load())

watch(wall, () => localStorage.setItem(storageKey(), JSON.stringify(wall)), { deep: true })
// Another user on this browser has their own wall.
watch(
  () => session.state.username,
  () => Object.assign(wall, load()),
)

export function setSplit(split: Split): void {
  wall.split = split
  if (wall.selected >= split) wall.selected = 0
}

export function play(index: number, channel: WallChannel): void {
  wall.tiles[index] = channel
  wall.selected = index
}

export function close(index: number): void {
  wall.tiles[index] = null
}

export function clearAll(): void {
  wall.tiles.fill(null)
}
