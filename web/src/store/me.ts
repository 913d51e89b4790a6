// What the logged-in account may do (GET /auth/me), asked once per login: the console hides the
// buttons of steps the account may not take. The API decides anyway (403), so this is a courtesy,
// not a guard.

import { computed, shallowRef, watch } from 'vue'

import { api } from '@/api/endpoints'
import type { Me } from '@/api/types'
import { session } from './session'

const me = shallowRef<Me | null>(null)
let loading: Promise<Me | null> | null = null

export function loadMe(): Promise<Me | null> {
  if (!session.loggedIn) return Promise.resolve(null)
  loading ??= api.me().then(
    (answer) => (me.value = answer),
    () => {
      loading = null // ask again next time
      return null
    },
  )
  return loading
}

watch(
  () => session.state.token,
  () => {
    me.value = null
    loading = null
  },
)

/** True once known that the account has `permission`; false while unknown. */
export function useCan(permission: string) {
  void loadMe()
  return computed(() => me.value?.permissions.includes(permission) ?? false)
}

export const currentMe = me
