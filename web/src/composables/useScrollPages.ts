import { ref, shallowRef } from 'vue'

import { isAbort } from '@/api/client'
import type { Page } from '@/api/types'

type Fetch<T> = (cursor: string | undefined, signal: AbortSignal) => Promise<Page<T>>

/** Server pages by cursor, appended as the user scrolls (a virtual list shows them): `more()`
 * loads the next page when the list nears its end, `reset()` starts again from the first (after
 * the query changed) and cancels a load still running, so an older search never lands on top of
 * the newest. Only the rows on screen are rendered, whatever has been loaded. */
export function useScrollPages<T>(fetchPage: Fetch<T>) {
  const items = shallowRef<T[]>([])
  const loading = ref(false)
  const error = shallowRef<unknown>(null)
  const done = ref(false)
  let cursor: string | undefined
  let running: AbortController | null = null

  async function load(fresh: boolean): Promise<void> {
    if (fresh) running?.abort()
    else if (running || done.value) return
    const controller = new AbortController()
    running = controller
    loading.value = true
    try {
      const page = await fetchPage(fresh ? undefined : cursor, controller.signal)
      // A new array each time: a list grown in place would keep the virtual table's row count
      // (it sees the same array) and nothing past the first page could be scrolled to.
      items.value = fresh ? page.items : items.value.concat(page.items)
      cursor = page.next_cursor ?? undefined
      done.value = page.next_cursor === null
      error.value = null
    } catch (err) {
      if (isAbort(err)) return
      error.value = err
    } finally {
      if (running === controller) {
        loading.value = false
        running = null
      }
    }
  }

  return {
    items,
    loading,
    error,
    done,
    /** From the first page again (a new query, or a refresh). */
    reset: () => load(true),
    /** The next page, unless one is loading or there is none. */
    more: () => load(false),
  }
}
