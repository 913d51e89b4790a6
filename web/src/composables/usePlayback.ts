import { onBeforeUnmount, ref, shallowRef, type Ref } from 'vue'

import { isAbort } from '@/api/client'
import { api } from '@/api/endpoints'
import { MsePlayer, mseSupported, type SegmentMark, type StreamInfo } from '@/player/msePlayer'
import type { LiveProblem } from './useLiveStream'

export type PlaybackState = 'idle' | 'starting' | 'connecting' | 'buffering' | 'playing' | 'ended' | 'failed'

export const SPEEDS = [0.5, 1, 2, 4, 8] as const

/** Recorded video of one channel in `video`: a seek or a new speed is a new request to the API
 * (from the wall-clock time shown), played through the MSE player. `wall` is the wall-clock time
 * of the picture on screen, from the node's "segment" messages. */
export function usePlayback(video: Ref<HTMLVideoElement | null>, channelId: () => string) {
  const state = ref<PlaybackState>('idle')
  const problem = shallowRef<LiveProblem | null>(null)
  const info = shallowRef<StreamInfo | null>(null)
  const wall = shallowRef<Date | null>(null)
  const speed = ref<number>(1)
  const missing = ref(0)
  let marks: SegmentMark[] = []
  let player: MsePlayer | null = null
  let request: AbortController | null = null

  /** Wall-clock time at the playhead: the last mark at or before it (the node sends ~2 s ahead). */
  function updateWall(): void {
    const t = video.value?.currentTime ?? 0
    let mark: SegmentMark | undefined
    for (const m of marks) if (m.mediaS <= t + 0.05) mark = m
    mark ??= marks[0]
    if (mark) wall.value = new Date(mark.wall.getTime() + (t - mark.mediaS) * 1000)
  }

  function fail(why: LiveProblem): void {
    player?.stop()
    problem.value = why
    state.value = 'failed'
  }

  async function play(at: Date, newSpeed = speed.value): Promise<void> {
    const element = video.value
    if (!element) return
    if (!mseSupported()) return fail({ kind: 'mse_unsupported' })
    request?.abort()
    request = new AbortController()
    player?.stop()
    speed.value = newSpeed
    marks = []
    missing.value = 0
    wall.value = at
    problem.value = null
    state.value = 'starting'
    try {
      const session = await api.startPlayback(channelId(), at, newSpeed, request.signal)
      player = new MsePlayer(element, {
        followLiveEdge: false,
        playbackRate: newSpeed,
        // Recorded video at 8x: keep more behind the playhead than live does.
        keepBehindS: 20,
        onState: (s) => {
          if (s === 'connecting' || s === 'buffering' || s === 'playing' || s === 'ended') state.value = s
        },
        onInfo: (i) => (info.value = i),
        onSegment: (mark) => {
          marks.push(mark)
          if (marks.length > 50) marks = marks.slice(-50)
          if (marks.length === 1) updateWall()
        },
        onMissing: () => (missing.value += 1),
        onFailure: fail,
      })
      player.start(session.ws_url)
    } catch (err) {
      if (isAbort(err)) return
      fail({ kind: 'api', error: err })
    }
  }

  /** Same place, another speed. */
  function setSpeed(value: number): void {
    if (wall.value && state.value !== 'idle') void play(wall.value, value)
    else speed.value = value
  }

  function stop(): void {
    request?.abort()
    request = null
    player?.stop()
    player = null
    state.value = 'idle'
    marks = []
    wall.value = null
  }

  onBeforeUnmount(stop)

  return { state, problem, info, wall, speed, missing, play, setSpeed, stop, updateWall }
}
