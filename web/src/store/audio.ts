// Which player may make sound, and how loud: at most one at a time in the whole console (one
// wall tile, or the live view, or the playback view); turning one on turns the one before off.
// Kept in sessionStorage: the choice lasts while the tab is open (a reload, another channel in the
// live view), not into the next visit, where the video starts muted again.

import { reactive, watch } from 'vue'

export interface AudioChoice {
  /** The player that has the sound ("live", "playback", "wall:3"), or none. */
  owner: string | null
  /** 0..1, the same for every player. */
  volume: number
}

const STORAGE_KEY = 'camgrid.audio'

function load(): AudioChoice {
  const choice: AudioChoice = { owner: null, volume: 1 }
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Partial<AudioChoice> | null
    if (typeof saved?.owner === 'string') choice.owner = saved.owner
    if (typeof saved?.volume === 'number' && saved.volume >= 0 && saved.volume <= 1) choice.volume = saved.volume
  } catch {
    // A damaged entry is the same as none.
  }
  return choice
}

export const audioChoice = reactive<AudioChoice>(load())

watch(audioChoice, () => sessionStorage.setItem(STORAGE_KEY, JSON.stringify(audioChoice)))
