// Live video from a camgrid media node: fMP4 over a WebSocket into a <video> through Media
// Source Extensions (docs/media-node.md). The node sends a JSON {"type":"init", codec_string,
// width, height} text message before each init segment, then binary pieces: the init segment,
// then one moof+mdat per frame.
//
// Appends are queued while the SourceBuffer is busy; what lies more than `keepBehindS` behind
// the playhead is removed so memory stays bounded; when playback falls more than `maxDelayS`
// behind the newest frame it jumps to the live edge.
//
// Recorded footage (the node's /playback socket) comes the same way, with more text messages:
// "segment" (`media_s` on the player's timeline is `wall` on the clock), "missing", "end". Its
// "init" names the codec but not the codec string: that is read from the init segment itself.
// A player made with `followLiveEdge: false` does not jump, and plays at `playbackRate`.
//
// Footage from a device's storage comes over the live socket (device-side pacing, so the player
// follows the edge) with "segment" messages too, at its start and after each seek. `setRate`
// plays it at the speed the device was asked for (the edge allowance grows with it); `hold` keeps
// the element paused while the device is, `release` plays on. A forward seek of a few seconds
// leaves a gap on the media timeline: the player steps over a gap it stands at.
//
// Audio: a stream with sound says so in its "init" message (`audio`: the device's codec, whether
// it is played, transcoded to what, or why not) and gives `codecs`, every track's codec string
// ("avc1.64001f,mp4a.40.2"); the SourceBuffer is made for all of them. Recorded footage's init
// segment is read for its mp4a track the same way. Video-only streams are set up as before.
// The video element starts muted (browsers let only muted media start by itself); `muted: false`
// or the element's own controls let the sound through.
//
// A new init segment with the same tracks but another codec (the device switched H.264 → H.265)
// goes into the same SourceBuffer after `changeType`. One that adds or removes a track (a
// recording whose first segment has no audio yet, then one with audio) cannot: a SourceBuffer
// keeps the tracks it was made with. The player then lets what is buffered play out, and goes on
// with a new MediaSource and SourceBuffer made for the new tracks, from the same place on the
// same media timeline (the fragments' times go on from where they were; so do the recorded
// footage's "segment" marks), with the element's muted/volume/rate untouched.

export type PlayerState = 'connecting' | 'buffering' | 'playing' | 'ended' | 'closed' | 'failed'

/** Recorded footage: from `mediaS` on the player's timeline on, the picture is from `wall`. */
export interface SegmentMark {
  mediaS: number
  wall: Date
  /** Device playback: "start" (the range's start) or "seek" (a seek's target). */
  cause?: string
}

export interface AudioInfo {
  /** What the device sends: g711a | g711u | aac. */
  codec: string
  played: boolean
  /** Set when the node transcodes for the browser (G.711 → aac). */
  transcodedTo?: string | null
  /** Why the sound is not played, when it is not. */
  reason?: string | null
}

export interface StreamInfo {
  codec: string
  /** For MSE: every track's codec string, comma-separated. */
  codecString: string
  width: number
  height: number
  audio?: AudioInfo
}

export interface PlayerStats {
  bytes: number
  fragments: number
  /** Seconds between the playhead and the newest buffered frame. */
  delayS: number
  bufferedS: number
  liveEdgeJumps: number
  /** New MediaSources made because an init segment added or removed a track. */
  rebuilds: number
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
  /** Start with the sound off (default): browsers only let muted media play by itself. */
  muted?: boolean
  /** Called once when the stream cannot go on; the player is stopped by then. */
  onFailure?: (failure: PlayerFailure) => void
  /** Live (default): jump to the newest frame when more than maxDelayS behind. Off for recordings. */
  followLiveEdge?: boolean
  /** video.playbackRate; recordings sent at 4x are played at 4x. */
  playbackRate?: number
  onSegment?: (mark: SegmentMark) => void
  /** A recorded segment whose file is gone (the timeline skips it). */
  onMissing?: () => void
  /** The node sent everything there is: what is buffered plays out, then the state is 'ended'. */
  onEnd?: () => void
  /** A socket the node closes normally (1000) means the end, not a failure: a device playback
   * ends so when the device reaches the end of its range. */
  endOnClose?: boolean
}

interface TextMessage {
  type: 'init' | 'segment' | 'missing' | 'end'
  codec?: string
  codec_string?: string
  /** Every track's codec string (only for streams with audio). */
  codecs?: string
  audio?: { codec: string; played?: boolean; transcoded_to?: string | null; reason?: string | null } | null
  width?: number
  height?: number
  media_s?: number
  wall?: string | null
  cause?: string
}

/** A piece waiting for the SourceBuffer: media bytes, or where something is to happen. */
type Piece =
  | ArrayBuffer
  | { mark: 'end' }
  | { mark: 'codec'; codec: string }
  | { mark: 'tracks'; codec: string }

const AUDIO_CODEC = /^(mp4a|opus|flac|ac-3|ec-3|alaw|ulaw|mp3|vorbis)/i

/** What tracks a codecs list stands for, e.g. "audio+video" for "avc1.64001f,mp4a.40.2". */
export function trackSetOf(codecString: string): string {
  return codecString
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean)
    .map((c) => (AUDIO_CODEC.test(c) ? 'audio' : 'video'))
    .sort()
    .join('+')
}

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, '0')

function findBox(bytes: Uint8Array, name: string): number {
  const [a, b, c, d] = [...name].map((ch) => ch.charCodeAt(0))
  for (let i = 4; i + 4 < bytes.length; i++) {
    if (bytes[i] === a && bytes[i + 1] === b && bytes[i + 2] === c && bytes[i + 3] === d) return i + 4
  }
  return -1
}

/** mp4a.40.<audio object type> of an init segment's AAC track (from its esds), or null without one. */
export function audioCodecStringOf(init: ArrayBuffer): string | null {
  const bytes = new Uint8Array(init)
  if (findBox(bytes, 'mp4a') < 0) return null
  const esds = findBox(bytes, 'esds')
  if (esds < 0) return 'mp4a.40.2'
  // DecoderConfigDescriptor: MPEG-4 audio (0x40), audio stream (0x15), 11 more bytes, then the
  // DecoderSpecificInfo tag (5), its length (7 bits a byte) and the AudioSpecificConfig.
  for (let i = esds; i + 14 < bytes.length; i++) {
    if (bytes[i] === 0x40 && bytes[i + 1] === 0x15 && bytes[i + 13] === 0x05) {
      let j = i + 14
      while (j < bytes.length && (bytes[j] ?? 0) & 0x80) j++
      const aot = (bytes[j + 1] ?? 0x10) >> 3
      return `mp4a.40.${aot || 2}`
    }
  }
  return 'mp4a.40.2'
}

/** The RFC 6381 codec string of an fMP4 init segment: its video (avcC / hvcC) and, when it has
 *  one, its AAC track ("avc1.64001F,mp4a.40.2"). */
export function codecStringOf(init: ArrayBuffer, codec?: string): string {
  const video = videoCodecStringOf(init, codec)
  const audio = audioCodecStringOf(init)
  return audio ? `${video},${audio}` : video
}

function videoCodecStringOf(init: ArrayBuffer, codec?: string): string {
  const bytes = new Uint8Array(init)
  const at = (i: number) => bytes[i] ?? 0
  const avc = findBox(bytes, 'avcC')
  if (avc >= 0 && avc + 4 <= bytes.length) {
    return `avc1.${hex2(at(avc + 1))}${hex2(at(avc + 2))}${hex2(at(avc + 3))}`
  }
  const hvc = findBox(bytes, 'hvcC')
  if (hvc >= 0 && hvc + 13 <= bytes.length) {
    const p = at(hvc + 1)
    const space = ['', 'A', 'B', 'C'][p >> 6] ?? ''
    const tier = p & 0x20 ? 'H' : 'L'
    let compat = 0
    for (let i = 0; i < 4; i++) compat = (compat << 8) | at(hvc + 2 + i)
    let reversed = 0
    for (let i = 0; i < 32; i++) reversed = (reversed << 1) | ((compat >>> i) & 1)
    const constraints = Array.from(bytes.slice(hvc + 6, hvc + 12))
    while (constraints.length > 1 && constraints[constraints.length - 1] === 0) constraints.pop()
    const level = at(hvc + 12)
    return `hvc1.${space}${p & 0x1f}.${(reversed >>> 0).toString(16).toUpperCase()}.${tier}${level}.` +
      constraints.map((c) => c.toString(16).toUpperCase()).join('.')
  }
  return codec?.toLowerCase().startsWith('h265') || codec?.toLowerCase() === 'hevc' ? 'hvc1.1.6.L93.B0' : 'avc1.42E01E'
}

/** video/mp4 with the codecs parameter; several codecs are listed as `avc1.xxx, mp4a.40.2`. */
export const MIME = (codecString: string) =>
  `video/mp4; codecs="${codecString.split(',').map((c) => c.trim()).filter(Boolean).join(', ')}"`

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
  /** The codec the latest init was announced with (what the end of the queue is for). */
  private tailCodec: string | null = null
  /** A new MediaSource is due for these codecs once what is buffered has played out. */
  private rebuildTo: string | null = null
  private queue: Piece[] = []
  private queuedBytes = 0
  private timer: ReturnType<typeof setInterval> | null = null
  private lastTrim = 0
  private state: PlayerState = 'closed'
  private stopped = true
  /** The codec string is to be read from the next binary piece (the init segment). */
  private codecFromInit: string | null = null
  /** The node said "end": a closing socket is no failure, the buffer plays out. */
  private ended = false
  /** Paused on purpose (`hold`): new data does not start the element again. */
  private held = false
  private rate = 1
  private readonly stats: PlayerStats = { bytes: 0, fragments: 0, delayS: 0, bufferedS: 0, liveEdgeJumps: 0, rebuilds: 0 }

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
    this.ended = false
    this.codecFromInit = null
    this.setState('connecting')
    Object.assign(this.stats, { bytes: 0, fragments: 0, delayS: 0, bufferedS: 0, liveEdgeJumps: 0, rebuilds: 0 })

    // Muted video may start without a click; the sound (if the stream has any) waits for the user.
    this.video.muted = this.options.muted ?? true
    this.video.playsInline = true
    this.attachMediaSource()
    this.held = false
    this.setRate(this.options.playbackRate ?? 1)

    const ws = new WebSocket(wsUrl)
    ws.binaryType = 'arraybuffer'
    ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => this.onMessage(event.data)
    ws.onclose = (event) => {
      if (this.ws !== ws || this.stopped || this.ended) return
      if (event.code === 1000 && this.options.endOnClose) this.onText({ type: 'end' })
      else this.fail({ kind: 'closed', code: event.code, reason: event.reason })
    }
    this.ws = ws
    this.video.addEventListener('error', this.onVideoError)
    this.video.addEventListener('playing', this.onPlaying)
    this.video.addEventListener('ended', this.onEnded)
    this.video.addEventListener('waiting', this.onWaiting)
    this.timer = setInterval(() => this.tick(), 500)
  }

  /** A new MediaSource on the element (a new src: the element keeps muted, volume, default rate). */
  private attachMediaSource(): void {
    const mediaSource = new MediaSource()
    const before = this.objectUrl
    this.mediaSource = mediaSource
    this.objectUrl = URL.createObjectURL(mediaSource)
    this.video.src = this.objectUrl
    if (before) URL.revokeObjectURL(before)
    mediaSource.addEventListener(
      'sourceopen',
      () => {
        if (this.mediaSource === mediaSource && !this.stopped) this.pump()
      },
      { once: true },
    )
  }

  /** Play at `rate` from now on (footage the device sends at that pace). */
  setRate(rate: number): void {
    this.rate = rate
    this.video.defaultPlaybackRate = rate
    this.video.playbackRate = rate
  }

  /** Keep the picture still (the device paused): arriving data does not start it again. */
  hold(): void {
    this.held = true
    this.video.pause()
  }

  /** Play on after `hold`. */
  release(): void {
    this.held = false
    if (!this.stopped) this.video.play().catch(() => undefined)
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
    this.video.removeEventListener('ended', this.onEnded)
    this.video.removeEventListener('waiting', this.onWaiting)
    this.sourceBuffer?.removeEventListener('updateend', this.onUpdateEnd)
    this.sourceBuffer = null
    this.codecString = null
    this.pendingCodec = null
    this.tailCodec = null
    this.rebuildTo = null
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
      this.onText(JSON.parse(data) as TextMessage)
      return
    }
    if (this.codecFromInit !== null) {
      const codec = this.codecFromInit
      this.codecFromInit = null
      this.announce(codecStringOf(data, codec), codec, this.pendingInfo)
      if (this.stopped) return
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

  private pendingInfo = { width: 0, height: 0 }
  private pendingAudio: AudioInfo | undefined = undefined

  private onText(message: TextMessage): void {
    switch (message.type) {
      case 'init':
        this.pendingAudio = message.audio
          ? {
              codec: message.audio.codec,
              played: message.audio.played ?? true,
              transcodedTo: message.audio.transcoded_to ?? null,
              reason: message.audio.reason ?? null,
            }
          : undefined
        if (message.codecs || message.codec_string) {
          // A stream with audio lists every track in `codecs`; a video-only one has just its codec_string.
          const codecs = message.codecs || message.codec_string || ''
          this.announce(codecs, message.codec ?? codecs, message)
        } else {
          // Recorded footage: the init segment that follows tells the profile and level.
          this.codecFromInit = message.codec ?? ''
          this.pendingInfo = { width: message.width ?? 0, height: message.height ?? 0 }
        }
        return
      case 'segment':
        if (typeof message.media_s === 'number' && message.wall) {
          this.options.onSegment?.({ mediaS: message.media_s, wall: new Date(message.wall), cause: message.cause })
        }
        return
      case 'missing':
        this.options.onMissing?.()
        return
      case 'end':
        this.ended = true
        this.options.onEnd?.()
        this.queue.push({ mark: 'end' }) // end of stream once the queue reaches it
        this.pump()
        return
    }
  }

  private announce(codecString: string, codec: string, size: { width?: number; height?: number }): void {
    const mime = MIME(codecString)
    if (!MediaSource.isTypeSupported(mime)) {
      this.fail({ kind: 'codec_unsupported', codec: codec || codecString })
      return
    }
    const info: StreamInfo = { codec: codec || codecString, codecString, width: size.width ?? 0, height: size.height ?? 0 }
    if (this.pendingAudio) info.audio = this.pendingAudio
    else if (codecString.includes('mp4a')) info.audio = { codec: 'aac', played: true }
    this.options.onInfo?.(info)
    if (this.state === 'connecting') this.setState('buffering')
    const before = this.tailCodec
    this.tailCodec = codecString
    if (before === null) {
      this.pendingCodec = codecString // the first SourceBuffer is made for it
    } else if (codecString !== before) {
      // Once what came before is appended: the same tracks in another codec (the device switched
      // codec) take a changeType; a track more or less (audio starts or stops) a new MediaSource.
      // A mere change of resolution needs nothing: the next init segment carries it.
      const sameTracks = trackSetOf(codecString) === trackSetOf(before)
      this.queue.push({ mark: sameTracks ? 'codec' : 'tracks', codec: codecString })
    }
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
    if (this.rebuildTo !== null) return // waiting for the old buffer to play out
    const sb = this.ensureSourceBuffer()
    if (!sb || sb.updating || this.queue.length === 0) return
    const next = this.queue.shift()!
    if (!(next instanceof ArrayBuffer)) {
      if (next.mark === 'end') {
        if (this.mediaSource?.readyState === 'open') this.mediaSource.endOfStream()
        return
      }
      if (next.mark === 'tracks') {
        this.rebuildTo = next.codec
        this.maybeRebuild()
        return
      }
      if (next.codec !== this.codecString) {
        if (typeof sb.changeType !== 'function') {
          this.fail({ kind: 'media_error', message: 'the stream changed codec; this browser cannot follow' })
          return
        }
        sb.changeType(MIME(next.codec))
        this.codecString = next.codec
      }
      this.pump()
      return
    }
    this.queuedBytes -= next.byteLength
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
    if (this.video.paused && !this.held && buffered.length > 0) {
      // Live video does not pause: it starts with the first picture and carries on after a stall.
      const video = this.video
      video.play().catch((err: unknown) => {
        // Sound that the browser will not start without a click (the element was unmuted before a
        // new MediaSource): play on muted, as AudioControl does. Else (a browser that blocks even
        // muted autoplay) the next piece tries again.
        if (err instanceof DOMException && err.name === 'NotAllowedError' && !video.muted && !this.stopped) {
          video.muted = true
          video.play().catch(() => undefined)
        }
      })
    }
    this.pump()
  }

  private readonly onPlaying = (): void => this.setState('playing')

  private readonly onWaiting = (): void => this.maybeRebuild()

  /** A new MediaSource for a new set of tracks, once the old one has played out to its end. */
  private maybeRebuild(): void {
    const codec = this.rebuildTo
    if (codec === null || this.stopped) return
    const buffered = this.video.buffered
    const end = buffered.length > 0 ? buffered.end(buffered.length - 1) : 0
    if (buffered.length > 0 && end - this.video.currentTime > 0.1) return // still playing what is there
    const resumeAt = Math.max(this.video.currentTime, end)
    this.sourceBuffer?.removeEventListener('updateend', this.onUpdateEnd)
    this.sourceBuffer = null
    this.codecString = null
    this.pendingCodec = codec
    this.rebuildTo = null
    this.stats.rebuilds += 1
    this.attachMediaSource()
    // Until the new data is there the element reports this position (its default playback start
    // position), so a recorded-playback clock that reads currentTime does not jump back to 0.
    this.video.currentTime = resumeAt
  }

  private readonly onEnded = (): void => {
    if (this.ended) this.setState('ended')
  }

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

  /** Standing at the end of a buffered range with another one after it (the media time jumped
   * forward: a device's forward seek): go on from the next range. */
  private stepOverGap(buffered: TimeRanges): void {
    const t = this.video.currentTime
    for (let i = 0; i + 1 < buffered.length; i++) {
      if (t >= buffered.end(i) - 0.1 && t < buffered.start(i + 1)) {
        this.video.currentTime = buffered.start(i + 1)
        return
      }
    }
  }

  /** Twice a second: keep near the live edge, bound the buffer, report. */
  private tick(): void {
    this.maybeRebuild()
    const buffered = this.video.buffered
    if (buffered.length === 0) return
    const edge = buffered.end(buffered.length - 1)
    this.stepOverGap(buffered)
    const delay = edge - this.video.currentTime
    if (delay > this.maxDelayS * Math.max(1, this.rate) && this.options.followLiveEdge !== false && !this.held) {
      // Fell behind (a busy tab, a stall): jump to just before the newest frame.
      this.video.currentTime = Math.max(buffered.start(buffered.length - 1), edge - 0.3)
      this.stats.liveEdgeJumps += 1
    }
    if (this.video.currentTime - buffered.start(0) > this.keepBehindS && performance.now() - this.lastTrim > 2000) {
      this.trim(this.keepBehindS / 2)
    }
    if (this.ended && this.queue.length === 0 && edge - this.video.currentTime < 0.25 && this.video.readyState < 3) {
      // Everything came and is played: the element does not always say 'ended' itself (an audio
      // track that ends a little before the video leaves it waiting for more).
      this.setState('ended')
    }
    this.stats.delayS = Math.max(0, edge - this.video.currentTime)
    this.stats.bufferedS = edge - buffered.start(0)
    this.options.onStats?.({ ...this.stats })
  }
}
