// Live video from a camgrid media node: fMP4 over a WebSocket into a <video> through Media
// Source Extensions (docs/media-node.md). The node sends a JSON {"type":"init", codec_string,
// width, height} text message before each init segment, then binary pieces: the init segment,
// then one moof+mdat per frame.
//
// Appends are queued while the SourceBuffer is busy; what lies more than `keepBehindS` behind
// the playhead is removed so memory stays bounded; when playback falls more than `maxDelayS`
// behind the newest frame it jumps to the live edge.

export type PlayerState = 'connecting' | 'buffering' | 'playing' | 'closed' | 'failed'

export interface StreamInfo {
  codec: string
  codecString: string
  width: number
  height: number
}

export interface PlayerStats {
  bytes: number
  fragments: number
  /** Seconds between the playhead and the newest buffered frame. */
  delayS: number
  bufferedS: number
  liveEdgeJumps: number
}

export type PlayerFailure =
  | { kind: 'mse_unsupported' }
  | { kind: 'codec_unsupported'; codec: string }
  | { kind: 'closed'; code: number; reason: string }
  | { kind: 'media_error'; message: string }

export interface PlayerOptions {
  keepBehindS?: number
  maxDelayS?: number
  /** Reconnect instead of queueing more than this (the tab could not keep up). */
  maxQueueBytes?: number
  onState?: (state: PlayerState) => void
  onInfo?: (info: StreamInfo) => void
  onStats?: (stats: PlayerStats) => void
  /** Called once when the stream cannot go on; the player is stopped by then. */
  onFailure?: (failure: PlayerFailure) => void
}

interface InitMessage {
  type: 'init'
  codec?: string
  codec_string: string
  width: number
  height: number
}

const MIME = (codecString: string) => `video/mp4; codecs="${codecString}"`

export function mseSupported(): boolean {
  return typeof window !== 'undefined' && 'MediaSource' in window
}

export class MsePlayer {
  private readonly keepBehindS: number
  private readonly maxDelayS: number
  private readonly maxQueueBytes: number
  private ws: WebSocket | null = null
  private mediaSource: MediaSource | null = null
  private objectUrl: string | null = null
  private sourceBuffer: SourceBuffer | null = null
  /** The codec the SourceBuffer was made for, and the one the latest init message announced. */
  private codecString: string | null = null
  private pendingCodec: string | null = null
  private queue: ArrayBuffer[] = []
  private queuedBytes = 0
  private timer: ReturnType<typeof setInterval> | null = null
  private lastTrim = 0
  private state: PlayerState = 'closed'
  private stopped = true
  private readonly stats: PlayerStats = { bytes: 0, fragments: 0, delayS: 0, bufferedS: 0, liveEdgeJumps: 0 }

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly options: PlayerOptions = {},
  ) {
    this.keepBehindS = options.keepBehindS ?? 10
    this.maxDelayS = options.maxDelayS ?? 2
    this.maxQueueBytes = options.maxQueueBytes ?? 32 * 1024 * 1024
  }

  /** Play `wsUrl`; a running stream is stopped first. */
  start(wsUrl: string): void {
    this.stop()
    if (!mseSupported()) {
      this.fail({ kind: 'mse_unsupported' })
      return
    }
    this.stopped = false
    this.setState('connecting')
    Object.assign(this.stats, { bytes: 0, fragments: 0, delayS: 0, bufferedS: 0, liveEdgeJumps: 0 })

    const mediaSource = new MediaSource()
    this.mediaSource = mediaSource
    this.objectUrl = URL.createObjectURL(mediaSource)
    // Live video has no sound yet; muted video may start without a click.
    this.video.muted = true
    this.video.playsInline = true
    this.video.src = this.objectUrl
    mediaSource.addEventListener('sourceopen', () => this.pump(), { once: true })

    const ws = new WebSocket(wsUrl)
    ws.binaryType = 'arraybuffer'
    ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => this.onMessage(event.data)
    ws.onclose = (event) => {
      if (this.ws === ws && !this.stopped) {
        this.fail({ kind: 'closed', code: event.code, reason: event.reason })
      }
    }
    this.ws = ws
    this.video.addEventListener('error', this.onVideoError)
    this.video.addEventListener('playing', this.onPlaying)
    this.timer = setInterval(() => this.tick(), 500)
  }

  /** Stop and release everything; no callback fires after this. */
  stop(): void {
    this.stopped = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.ws) {
      this.ws.onmessage = null
      this.ws.onclose = null
      this.ws.close()
      this.ws = null
    }
    this.video.removeEventListener('error', this.onVideoError)
    this.video.removeEventListener('playing', this.onPlaying)
    this.sourceBuffer?.removeEventListener('updateend', this.onUpdateEnd)
    this.sourceBuffer = null
    this.codecString = null
    this.pendingCodec = null
    this.queue = []
    this.queuedBytes = 0
    if (this.mediaSource?.readyState === 'open') {
      try {
        this.mediaSource.endOfStream()
      } catch {
        // Already ending: nothing to do.
      }
    }
    this.mediaSource = null
    if (this.objectUrl) {
      this.video.removeAttribute('src')
      this.video.load()
      URL.revokeObjectURL(this.objectUrl)
      this.objectUrl = null
    }
    this.state = 'closed'
  }

  private setState(state: PlayerState): void {
    if (state === this.state) return
    this.state = state
    this.options.onState?.(state)
  }

  private fail(failure: PlayerFailure): void {
    this.stop()
    this.state = 'failed'
    this.options.onState?.('failed')
    this.options.onFailure?.(failure)
  }

  private onMessage(data: string | ArrayBuffer): void {
    if (this.stopped) return
    if (typeof data === 'string') {
      this.onInit(JSON.parse(data) as InitMessage)
      return
    }
    this.stats.bytes += data.byteLength
    this.stats.fragments += 1
    this.queue.push(data)
    this.queuedBytes += data.byteLength
    if (this.queuedBytes > this.maxQueueBytes) {
      this.fail({ kind: 'media_error', message: 'the browser could not keep up with the stream' })
      return
    }
    this.pump()
  }

  private onInit(message: InitMessage): void {
    if (message.type !== 'init') return // other kinds (playback's "segment") are not for live
    const mime = MIME(message.codec_string)
    if (!MediaSource.isTypeSupported(mime)) {
      this.fail({ kind: 'codec_unsupported', codec: message.codec ?? message.codec_string })
      return
    }
    this.options.onInfo?.({
      codec: message.codec ?? message.codec_string,
      codecString: message.codec_string,
      width: message.width,
      height: message.height,
    })
    if (this.state === 'connecting') this.setState('buffering')
    if (this.sourceBuffer && message.codec_string !== this.codecString) {
      // The device switched codec: keep the buffer, tell it what comes next. A mere change of
      // resolution needs nothing: the next init segment carries it.
      this.queue.push(new ArrayBuffer(0)) // a marker: changeType once the queue reaches it
    }
    this.pendingCodec = message.codec_string
    this.pump()
  }

  private ensureSourceBuffer(): SourceBuffer | null {
    const ms = this.mediaSource
    if (!ms || ms.readyState !== 'open') return null
    if (!this.sourceBuffer && this.pendingCodec) {
      const sb = ms.addSourceBuffer(MIME(this.pendingCodec))
      sb.mode = 'segments'
      sb.addEventListener('updateend', this.onUpdateEnd)
      this.sourceBuffer = sb
      this.codecString = this.pendingCodec
    }
    return this.sourceBuffer
  }

  /** Append the next queued piece when the SourceBuffer is idle. */
  private pump(): void {
    const sb = this.ensureSourceBuffer()
    if (!sb || sb.updating || this.queue.length === 0) return
    const next = this.queue.shift()!
    this.queuedBytes -= next.byteLength
    if (next.byteLength === 0) {
      if (this.pendingCodec && this.pendingCodec !== this.codecString) {
        if (typeof sb.changeType !== 'function') {
          this.fail({ kind: 'media_error', message: 'the stream changed codec; this browser cannot follow' })
          return
        }
        sb.changeType(MIME(this.pendingCodec))
        this.codecString = this.pendingCodec
      }
      this.pump()
      return
    }
    try {
      sb.appendBuffer(next)
    } catch (err) {
      if (err instanceof DOMException && err.name === 'QuotaExceededError') {
        // Full: put it back, drop what is behind the playhead, retry after that removal.
        this.queue.unshift(next)
        this.queuedBytes += next.byteLength
        this.trim(1)
        return
      }
      this.fail({ kind: 'media_error', message: err instanceof Error ? err.message : String(err) })
    }
  }

  private readonly onUpdateEnd = (): void => {
    if (this.stopped) return
    const buffered = this.video.buffered
    if (buffered.length > 0 && this.video.currentTime < buffered.start(0)) {
      // First data (or a gap after a key-frame resume): start where the picture is.
      this.video.currentTime = buffered.start(0)
    }
    if (this.video.paused && buffered.length > 0) {
      // Live video does not pause: it starts with the first picture and carries on after a stall.
      this.video.play().catch(() => {
        // Refused (a browser that blocks even muted autoplay): the next piece tries again.
      })
    }
    this.pump()
  }

  private readonly onPlaying = (): void => this.setState('playing')

  private readonly onVideoError = (): void => {
    const error = this.video.error
    if (!this.stopped && error) this.fail({ kind: 'media_error', message: error.message || `media error ${error.code}` })
  }

  /** Remove what lies more than keepS behind the playhead. */
  private trim(keepS: number): void {
    const sb = this.sourceBuffer
    const buffered = this.video.buffered
    if (!sb || sb.updating || buffered.length === 0) return
    const end = this.video.currentTime - keepS
    if (end > buffered.start(0)) {
      sb.remove(buffered.start(0), end)
      this.lastTrim = performance.now()
    }
  }

  /** Twice a second: keep near the live edge, bound the buffer, report. */
  private tick(): void {
    const buffered = this.video.buffered
    if (buffered.length === 0) return
    const edge = buffered.end(buffered.length - 1)
    const delay = edge - this.video.currentTime
    if (delay > this.maxDelayS) {
      // Fell behind (a busy tab, a stall): jump to just before the newest frame.
      this.video.currentTime = Math.max(buffered.start(buffered.length - 1), edge - 0.3)
      this.stats.liveEdgeJumps += 1
    }
    if (this.video.currentTime - buffered.start(0) > this.keepBehindS && performance.now() - this.lastTrim > 2000) {
      this.trim(this.keepBehindS / 2)
    }
    this.stats.delayS = Math.max(0, edge - this.video.currentTime)
    this.stats.bufferedS = edge - buffered.start(0)
    this.options.onStats?.({ ...this.stats })
  }
}
