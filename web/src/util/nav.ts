/** A `?next=` target that stays inside the console (never an absolute URL to elsewhere). */
export function safeNext(value: unknown, fallback = '/'): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') ? value : fallback
}
