import { ref, shallowRef } from 'vue'

import { isAbort } from '@/api/client'

/** One load at a time, the newest wins: `run(work)` cancels a load still running (its abort
 * error is swallowed, so an older search never lands on top of the newest), and `loading` and
 * `error` follow the newest. `work` stores what it fetched itself, after its await. Shared by
 * useCursorPages and useScrollPages. */
export function useLatestLoad() {
  const loading = ref(false)
  const error = shallowRef<unknown>(null)
  let running: AbortController | null = null

  async function run(work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    running?.abort()
    const controller = new AbortController()
    running = controller
    loading.value = true
    try {
      await work(controller.signal)
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
    loading,
    error,
    run,
    /** Whether a load is running now. */
    busy: () => running !== null,
    cancel: () => running?.abort(),
  }
}
