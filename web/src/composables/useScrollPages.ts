import { ref, shallowRef } from 'vue'

import type { Page } from '@/api/types'
import { useLatestLoad } from './useLatestLoad'

type Fetch<T> = (cursor: string | undefined, signal: AbortSignal) => Promise<Page<T>>

/** Server pages by cursor, appended as the user scrolls (a virtual list shows them): `more()`
 * loads the next page when the list nears its end, `reset()` starts again from the first (after
 * the query changed) and cancels a load still running, so an older search never lands on top of
 * the newest. Only the rows on screen are rendered, whatever has been loaded. */
export function useScrollPages<T>(fetchPage: Fetch<T>) {
  const items = shallowRef<T[]>([])
  const done = ref(false)
  const { loading, error, run, busy } = useLatestLoad()
  let cursor: string | undefined

  function load(fresh: boolean): Promise<void> {
    if (!fresh && (busy() || done.value)) return Promise.resolve()
    return run(async (signal) => {
      const page = await fetchPage(fresh ? undefined : cursor, signal)
      // A new array each time: a list grown in place would keep the virtual table's row count
      // (it sees the same array) and nothing past the first page could be scrolled to.
      items.value = fresh ? page.items : items.value.concat(page.items)
      cursor = page.next_cursor ?? undefined
      done.value = page.next_cursor === null
    })
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
