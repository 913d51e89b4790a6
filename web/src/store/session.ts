// The one piece of shared state: who is logged in. Kept in localStorage so a reload or a second
// tab stays logged in until the token expires; the API client clears it when the server says the
// token is no longer valid, and the router sends the user to the login page.

import { reactive, readonly } from 'vue'

const STORAGE_KEY = 'camgrid.session'

export interface SessionState {
  token: string | null
  username: string | null
  expiresAt: string | null
  /** The server demands a new password before anything else (the one-time admin password). */
  mustChangePassword: boolean
}

function load(): SessionState {
  const empty: SessionState = { token: null, username: null, expiresAt: null, mustChangePassword: false }
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null') as SessionState | null
    if (saved?.token && saved.expiresAt && Date.parse(saved.expiresAt) > Date.now()) return { ...empty, ...saved }
  } catch {
    // A damaged entry is the same as none.
  }
  return empty
}

const state = reactive<SessionState>(load())

function persist(): void {
  if (state.token) localStorage.setItem(STORAGE_KEY, JSON.stringify(state))
  else localStorage.removeItem(STORAGE_KEY)
}

export const session = {
  state: readonly(state),

  get loggedIn(): boolean {
    return state.token !== null && (!state.expiresAt || Date.parse(state.expiresAt) > Date.now())
  },

  signIn(token: string, username: string, expiresAt: string, mustChangePassword: boolean): void {
    Object.assign(state, { token, username, expiresAt, mustChangePassword })
    persist()
  },

  passwordChangeRequired(required: boolean): void {
    state.mustChangePassword = required
    persist()
  },

  signOut(): void {
    Object.assign(state, { token: null, username: null, expiresAt: null, mustChangePassword: false })
    persist()
  },
}

// Logging out in one tab logs out the others.
window.addEventListener('storage', (event) => {
  if (event.key === STORAGE_KEY) Object.assign(state, load())
})
