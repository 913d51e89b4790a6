import { computed, ref, shallowRef } from 'vue'

import type { Page } from '@/api/types'
import { useLatestLoad } from './useLatestLoad'

type Fetch<T> = (cursor: string | undefined, signal: AbortSignal) => Promise<Page<T>>

/** Server paging by cursor: the API pages in key order and answers next_cursor; "previous"
 * walks back through the cursors seen. A new load cancels the one still running, so a fast
 * typist's older searches never overwrite the newest. */
export function useCursorPages<T>(fetchPage: Fetch<T>) {
  const items = shallowRef<T[]>([])
  const cursors = ref<(string | undefined)[]>([undefined]) // cursors[i] loads page i + 1
  const nextCursor = ref<string | null>(null)
  const { loading, error, run, cancel } = useLatestLoad()

  /** Load the page the last cursor of `path` starts; `path` becomes the trail once it arrived. */
  const load = (path: (string | undefined)[]): Promise<void> =>
    run(async (signal) => {
      const page = await fetchPage(path[path.length - 1], signal)
      items.value = page.items
      nextCursor.value = page.next_cursor
      cursors.value = path
    })

  return {
    items,
    loading,
    error,
    page: computed(() => cursors.value.length),
    hasPrevious: computed(() => cursors.value.length > 1),
    hasNext: computed(() => nextCursor.value !== null),
    /** From the first page (after the query changed). */
    reset: () => load([undefined]),
    /** The same page again (refresh). */
    reload: () => load(cursors.value),
    next: () => (nextCursor.value === null ? Promise.resolve() : load([...cursors.value, nextCursor.value])),
    previous: () => (cursors.value.length > 1 ? load(cursors.value.slice(0, -1)) : Promise.resolve()),
    cancel,
  }
}
