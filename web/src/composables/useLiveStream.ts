import { onBeforeUnmount, ref, shallowRef, type Ref } from 'vue'

import { ApiError, isAbort } from '@/api/client'
import { api } from '@/api/endpoints'
import { MsePlayer, mseSupported, type PlayerFailure, type PlayerStats, type StreamInfo } from '@/player/msePlayer'

export type LiveState = 'starting' | 'connecting' | 'buffering' | 'playing' | 'reconnecting' | 'stopped' | 'failed'

/** What went wrong, for the view to put in words: an API error (its message names the device's
 * reason), or a player failure. */
export type LiveProblem = { kind: 'api'; error: unknown } | PlayerFailure

// About half a minute in all: enough for a restarted media node or a device that re-registers.
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000]

/** Live video of one channel in `video`: asks the API for the stream (which starts it on the
 * device if nobody watches yet), plays its WebSocket, and asks again when the stream drops
 * (a fresh link each time: links are short-lived), a few times in a row before it gives up. */
export function useLiveStream(video: Ref<HTMLVideoElement | null>, channelId: () => string, deviceId: () => string | undefined) {
  const state = ref<LiveState>('stopped')
  const problem = shallowRef<LiveProblem | null>(null)
  const info = shallowRef<StreamInfo | null>(null)
  const stats = shallowRef<PlayerStats | null>(null)
  let player: MsePlayer | null = null
  let request: AbortController | null = null
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let attempt = 0

  function createPlayer(element: HTMLVideoElement): MsePlayer {
    return new MsePlayer(element, {
      onState: (s) => {
        if (s === 'connecting' || s === 'buffering' || s === 'playing') state.value = s
        if (s === 'playing') attempt = 0
      },
      onInfo: (i) => (info.value = i),
      onStats: (s) => (stats.value = s),
      onFailure: (failure) => {
        const fatal = failure.kind === 'mse_unsupported' || failure.kind === 'codec_unsupported'
        if (fatal) fail(failure)
        else retry(failure)
      },
    })
  }

  function fail(why: LiveProblem): void {
    problem.value = why
    state.value = 'failed'
  }

  function retry(why: LiveProblem): void {
    const delay = RETRY_DELAYS_MS[attempt]
    if (delay === undefined) {
      fail(why)
      return
    }
    attempt += 1
    problem.value = why
    state.value = 'reconnecting'
    retryTimer = setTimeout(() => void open(), delay)
  }

  async function open(): Promise<void> {
    const element = video.value
    if (!element) return
    if (!mseSupported()) {
      fail({ kind: 'mse_unsupported' })
      return
    }
    request?.abort()
    request = new AbortController()
    if (state.value !== 'reconnecting') state.value = 'starting'
    try {
      const live = await api.startLive(channelId(), deviceId(), 5, request.signal)
      player ??= createPlayer(element)
      problem.value = null
      player.start(live.ws_url)
    } catch (err) {
      if (isAbort(err)) return
      // A first request that fails is shown at once, with the server's reason (the device refused,
      // is offline, did not answer): asking again right away rarely helps, the operator decides.
      // While reconnecting a stream that played, a server-side hiccup (5xx, no answer) is retried.
      const transient = !(err instanceof ApiError) || err.status === 0 || err.status >= 500
      if (attempt > 0 && transient) retry({ kind: 'api', error: err })
      else fail({ kind: 'api', error: err })
    }
  }

  /** Start (or start over, after a failure: the retry budget is fresh). */
  function start(): void {
    stop()
    attempt = 0
    problem.value = null
    void open()
  }

  function stop(): void {
    clearTimeout(retryTimer)
    request?.abort()
    request = null
    player?.stop()
    state.value = 'stopped'
    stats.value = null
    info.value = null
  }

  onBeforeUnmount(stop)

  return { state, problem, info, stats, start, stop }
}
