import { useRouter } from 'vue-router'

import { api } from '@/api/endpoints'
import { session } from '@/store/session'

/** Sign out: revoke the token on the server (leave even when that fails: it expires anyway),
 * go to the login page, then forget the session (in that order, so it is not "expired"). */
export function useLogout(): () => Promise<void> {
  const router = useRouter()
  return async () => {
    await api.logout().catch(() => undefined)
    await router.push({ name: 'login' })
    session.signOut()
  }
}
