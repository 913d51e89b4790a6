import { onBeforeUnmount, ref, shallowRef, type Ref } from 'vue'

import { isAbort } from '@/api/client'
import { deviceApi } from '@/api/devicePlayback'
import type { DevicePlaybackSession, TimeRange } from '@/api/types'
import { MsePlayer, mseSupported, type SegmentMark, type StreamInfo } from '@/player/msePlayer'
import type { LiveProblem } from './useLiveStream'

export type DevicePlaybackState = 'idle' | 'starting' | 'connecting' | 'buffering' | 'playing' | 'paused' | 'ended' | 'failed'

// How long the shown position stays at a seek's target while the device's new footage is on its way.
const SEEK_HOLD_MS = 5000

/** Footage from a device's own storage in `video`: one Playback session for a range; a seek
 * inside that range, pause, resume and speed go to the device (MANSRTSP), a seek outside it is
 * a new session. The node sends "segment" marks (at the start and from each seek's key frame on)
 * that map the player's time to the recording's wall time: `wall` is the picture on screen. */
export function useDevicePlayback(
  video: Ref<HTMLVideoElement | null>,
  channelId: () => string,
  deviceId: () => string | undefined,
) {
  const state = ref<DevicePlaybackState>('idle')
  const problem = shallowRef<LiveProblem | null>(null)
  const info = shallowRef<StreamInfo | null>(null)
  const session = shallowRef<DevicePlaybackSession | null>(null)
  const wall = shallowRef<Date | null>(null)
  const speed = ref<number>(1)
  const busy = ref(false) // a control request is on its way
  let marks: SegmentMark[] = []
  let player: MsePlayer | null = null
  let request: AbortController | null = null
  // After a seek the target is shown until the picture from there is on screen: until the
  // playhead reaches the seek's mark (or SEEK_HOLD_MS pass without one).
  let seekShownUntil = 0
  let seekMarkS: number | null = null

  /** Wall-clock time at the playhead: the mark with the latest media time at or before it. */
  function updateWall(): void {
    const t = video.value?.currentTime ?? 0
    if (Date.now() < seekShownUntil && (seekMarkS === null || t < seekMarkS)) return
    seekShownUntil = 0
    let mark: SegmentMark | undefined
    for (const m of marks) if (m.mediaS <= t + 0.05 && (!mark || m.mediaS >= mark.mediaS)) mark = m
    if (mark) wall.value = new Date(mark.wall.getTime() + (t - mark.mediaS) * 1000)
  }

  function fail(why: LiveProblem): void {
    player?.stop()
    problem.value = why
    state.value = 'failed'
  }

  function release(): void {
    request?.abort()
    request = null
    player?.stop()
    player = null
    const running = session.value
    // The session is this user's own, so the API lets them end it (commands:device is not needed).
    if (running) void deviceApi.stopStream(running.session_id).catch(() => undefined)
    session.value = null
    marks = []
    seekShownUntil = 0
    seekMarkS = null
  }

  /** A new session for [from, to) on the device. */
  async function play(from: Date, to: Date): Promise<void> {
    const element = video.value
    if (!element) return
    if (!mseSupported()) return fail({ kind: 'mse_unsupported' })
    release()
    request = new AbortController()
    wall.value = from
    problem.value = null
    info.value = null
    state.value = 'starting'
    try {
      const started = await deviceApi.startDevicePlayback(channelId(), from, to, deviceId(), request.signal)
      session.value = started
      player = new MsePlayer(element, {
        playbackRate: speed.value,
        // At 8x the device sends 8 s of footage a second: keep more behind the playhead.
        keepBehindS: 20,
        // The device reached the end of the range (MediaStatus 121, the node closes the socket):
        // what is buffered plays out, then the state is 'ended'.
        endOnClose: true,
        onState: (s) => {
          if (s === 'connecting' || s === 'buffering' || s === 'playing' || s === 'ended') {
            if (state.value !== 'paused') state.value = s
          }
        },
        onInfo: (i) => (info.value = i),
        onSegment: (mark) => {
          marks = [...marks, mark].slice(-50)
          if (mark.cause === 'seek') seekMarkS = mark.mediaS
          updateWall()
        },
        onFailure: fail,
      })
      player.start(started.ws_url)
      if (speed.value !== 1) await control('speed', speed.value) // a new session starts at 1x on the device
    } catch (err) {
      if (isAbort(err)) return
      fail({ kind: 'api', error: err })
    }
  }

  async function control(action: 'pause' | 'resume' | 'seek' | 'speed', value?: number): Promise<boolean> {
    const running = session.value
    if (!running) return false
    busy.value = true
    try {
      await deviceApi.controlPlayback(running.session_id, action, value)
      return true
    } catch (err) {
      problem.value = { kind: 'api', error: err }
      return false
    } finally {
      busy.value = false
    }
  }

  const inRange = (at: Date, range: TimeRange) => at.getTime() >= Date.parse(range.from) && at.getTime() < Date.parse(range.to)

  /** Go to `at`: inside the running session's range a seek on the device; else a new session to `to`. */
  async function seek(at: Date, to: Date): Promise<void> {
    const running = session.value
    if (!running || state.value === 'failed' || state.value === 'ended' || !inRange(at, running.range)) {
      return play(at, to)
    }
    problem.value = null
    // Shown from now: the device's mark for it can come before its answer does.
    const before = wall.value
    wall.value = at
    seekShownUntil = Date.now() + SEEK_HOLD_MS
    seekMarkS = null
    if (await control('seek', (at.getTime() - Date.parse(running.range.from)) / 1000)) {
      if (state.value === 'paused') resumed() // a seek makes the device play again
    } else {
      seekShownUntil = 0
      wall.value = before
    }
  }

  function resumed(): void {
    player?.release()
    state.value = 'playing'
  }

  async function pause(): Promise<void> {
    if (await control('pause')) {
      player?.hold()
      state.value = 'paused'
    }
  }

  async function resume(): Promise<void> {
    if (await control('resume')) resumed()
  }

  /** Another pace (the device sends faster or slower; the player plays at that rate). */
  async function setSpeed(value: number): Promise<void> {
    if (session.value && !(await control('speed', value))) return
    speed.value = value
    player?.setRate(value)
    if (state.value === 'paused') resumed() // PLAY with Scale makes the device play again
  }

  function stop(): void {
    release()
    state.value = 'idle'
    wall.value = null
  }

  onBeforeUnmount(stop)

  return { state, problem, info, session, wall, speed, busy, play, seek, pause, resume, setSpeed, stop, updateWall }
}
