// The alarm centre's live stream (GET /api/v1/alarms/stream, server-sent events) for the whole
// console: read with fetch() and a streamed body (the token goes in a header, which EventSource
// cannot send), reconnected after a drop with a growing pause. It keeps the count of unresolved
// alarms for the header's badge and tells whoever listens (the alarms page, the popup) about
// every change.

import { reactive } from 'vue'

import { API_PREFIX } from '@/api/client'
import { api } from '@/api/endpoints'
import type { AlarmMessage } from '@/api/types'
import { session } from './session'

export type FeedState = 'off' | 'connecting' | 'live' | 'retrying' | 'unavailable'

export const alarmFeed = reactive({
  state: 'off' as FeedState,
  /** Unresolved alarms (GET /alarms/summary), refreshed after each change. */
  active: null as number | null,
  /** Changes received since the page was loaded (the newest first, at most 50). */
  recent: [] as AlarmMessage[],
})

type Listener = (message: AlarmMessage) => void
const listeners = new Set<Listener>()
let controller: AbortController | null = null
let retryTimer: ReturnType<typeof setTimeout> | undefined
let summaryTimer: ReturnType<typeof setTimeout> | undefined
let failures = 0

export function onAlarm(listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

function refreshSummary(): void {
  clearTimeout(summaryTimer)
  // A burst of changes asks once.
  summaryTimer = setTimeout(() => {
    api.alarmSummary().then(
      (s) => (alarmFeed.active = s.active),
      () => undefined,
    )
  }, 300)
}

function deliver(raw: string): void {
  let event = 'message'
  const data: string[] = []
  for (const line of raw.split('\n')) {
    if (line.startsWith(':')) continue
    if (line.startsWith('event:')) event = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
  }
  if (event !== 'alarm' || data.length === 0) return
  let message: AlarmMessage
  try {
    message = JSON.parse(data.join('\n')) as AlarmMessage
  } catch {
    return
  }
  alarmFeed.recent.unshift(message)
  alarmFeed.recent.splice(50)
  refreshSummary()
  for (const listener of listeners) listener(message)
}

async function connect(): Promise<void> {
  const token = session.state.token
  if (!token) return stopAlarmFeed()
  controller = new AbortController()
  const mine = controller
  alarmFeed.state = failures ? 'retrying' : 'connecting'
  try {
    const response = await fetch(`${API_PREFIX}/alarms/stream`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
      signal: mine.signal,
    })
    if (response.status === 401) {
      session.signOut()
      return
    }
    // 403: this account may not read alarms; 503: no alarm centre in this process. Nothing to retry.
    if (response.status === 403 || response.status === 503) {
      alarmFeed.state = 'unavailable'
      return
    }
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`)
    alarmFeed.state = 'live'
    failures = 0
    refreshSummary() // what changed while we were not listening
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value.replace(/\r\n/g, '\n')
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        deliver(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
      }
    }
    throw new Error('stream ended')
  } catch {
    if (mine.signal.aborted || controller !== mine) return
    failures += 1
    alarmFeed.state = 'retrying'
    retryTimer = setTimeout(() => void connect(), Math.min(30_000, 1000 * 2 ** Math.min(failures, 5)))
  }
}

/** Start listening (idempotent): the layout calls it when a logged-in page shows. */
export function startAlarmFeed(): void {
  if (controller || !session.loggedIn) return
  failures = 0
  refreshSummary()
  void connect()
}

export function stopAlarmFeed(): void {
  clearTimeout(retryTimer)
  clearTimeout(summaryTimer)
  controller?.abort()
  controller = null
  alarmFeed.state = 'off'
  alarmFeed.active = null
  alarmFeed.recent.splice(0)
}
