import { ref, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'

import { ApiError } from '@/api/client'
import { errorText } from '@/i18n'

export interface StepMessage {
  type: 'success' | 'error' | 'warning'
  text: string
}

/** A workflow step of an alarm or a work order (the drawers): the step being filled in, whether it
 * is being sent, and what to show after. `run(send)` sends it; on success the step closes, says
 * the new state (`<section>.done`), tells `changed` and reads the item again; a refusal (403) is
 * shown in words (`<section>.refused`); a step the state no longer allows (409: someone was
 * quicker) is shown (`<section>.conflict`), closes the step and reads the item again. */
export function useWorkflowStep<Step extends string, Item extends { state: string }>(options: {
  section: 'alarms' | 'orders'
  reload: () => Promise<void>
  changed: (item: Item) => void
}) {
  const { t } = useI18n()
  const step = ref(null) as Ref<Step | null>
  const busy = ref(false)
  const message = ref<StepMessage | null>(null)
  const { section } = options

  async function run(send: () => Promise<Item>): Promise<void> {
    busy.value = true
    try {
      const changed = await send()
      step.value = null
      message.value = { type: 'success', text: t(`${section}.done`, { state: t(`${section}.states.${changed.state}`) }) }
      options.changed(changed)
      await options.reload()
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        message.value = { type: 'error', text: t(`${section}.refused`, { message: err.message }) }
      } else if (err instanceof ApiError && err.status === 409) {
        message.value = { type: 'error', text: t(`${section}.conflict`, { message: err.message }) }
        step.value = null
        await options.reload()
      } else {
        message.value = { type: 'error', text: errorText(err, t) }
      }
    } finally {
      busy.value = false
    }
  }

  return { step, busy, message, run }
}
