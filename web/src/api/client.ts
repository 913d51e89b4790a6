// The one door to the camgrid API: adds the token, turns every failure into an ApiError with
// the server's own message, and updates the session when the server says the login is over or
// the password must be changed first.

import { session } from '@/store/session'

export const API_PREFIX = '/api/v1'

/** A failed call. `code` is the API's error.code, or 'network_error' / 'timeout' when no answer came. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export type Query = Record<string, string | number | undefined | null>

export interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
  /** Give up after this long (ms). Default 20 s: a live start may wait for the device. */
  timeoutMs?: number
}

function url(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value))
  }
  const qs = params.toString()
  return `${API_PREFIX}${path}${qs ? `?${qs}` : ''}`
}

async function errorFrom(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } }
    if (body.error?.message) return new ApiError(response.status, body.error.code ?? 'error', body.error.message)
  } catch {
    // Not JSON (a proxy's error page): fall through.
  }
  return new ApiError(response.status, 'http_error', `${response.status} ${response.statusText}`.trim())
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  const token = session.state.token
  if (token) headers.Authorization = `Bearer ${token}`
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'

  // One controller for both the caller's cancel and our timeout (AbortSignal.any is too new for
  // some of the browsers operators use).
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs ?? 20_000)
  const cancel = () => controller.abort()
  options.signal?.addEventListener('abort', cancel)
  let response: Response
  try {
    response = await fetch(url(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: controller.signal,
    })
  } catch (err) {
    if (timedOut) throw new ApiError(0, 'timeout', 'the server did not answer in time')
    if (options.signal?.aborted) throw err // the caller cancelled: not an error to show
    throw new ApiError(0, 'network_error', err instanceof Error ? err.message : String(err))
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', cancel)
  }

  if (!response.ok) {
    const error = await errorFrom(response)
    if (response.status === 401 && token) session.signOut()
    if (error.code === 'password_change_required') session.passwordChangeRequired(true)
    throw error
  }
  if (response.status === 204) return undefined as T
  return (await response.json()) as T
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal })
export const post = <T>(path: string, body?: unknown, options: Omit<RequestOptions, 'body'> = {}) =>
  request<T>('POST', path, { ...options, body: body ?? {} })

/** True when the caller cancelled the request (a newer search replaced it, the page was left). */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError'
}
