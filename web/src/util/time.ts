// Local wall-clock formatting for the playback page (the operator's own time zone).

const pad = (n: number) => String(n).padStart(2, '0')

/** HH:MM:SS */
export const clock = (d: Date) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`

/** YYYY-MM-DD */
export const day = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`

/** 1:02:03 or 2:03 (h:mm:ss, m:ss) for a length in seconds. */
export function duration(seconds: number): string {
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`
}

/** Local midnight of `d`'s day, and of the next day. */
export function dayBounds(d: Date): [Date, Date] {
  return [new Date(d.getFullYear(), d.getMonth(), d.getDate()), new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1)]
}
