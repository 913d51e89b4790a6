import { createI18n } from 'vue-i18n'

import { ApiError } from '@/api/client'
import type { LiveProblem } from '@/composables/useLiveStream'
import en from './en'
import zhCN from './zh-CN'

export type Messages = typeof en
export type Locale = 'zh-CN' | 'en'
export const LOCALES: Locale[] = ['zh-CN', 'en']

const STORAGE_KEY = 'camgrid.locale'

function savedLocale(): Locale {
  const saved = localStorage.getItem(STORAGE_KEY)
  return LOCALES.includes(saved as Locale) ? (saved as Locale) : 'zh-CN'
}

export function createConsoleI18n() {
  const locale = savedLocale()
  document.documentElement.lang = locale
  return createI18n<[Messages], Locale>({
    legacy: false,
    locale,
    fallbackLocale: 'en',
    messages: { 'zh-CN': zhCN, en },
  })
}

export function rememberLocale(locale: Locale): void {
  localStorage.setItem(STORAGE_KEY, locale)
  document.documentElement.lang = locale
}

type Translate = (key: string, values?: Record<string, unknown>) => string

/** What to show for a failed call: our words when no answer came, else the server's own message
 * (it says what happened and what to do). */
export function errorText(err: unknown, t: Translate): string {
  if (err instanceof ApiError) {
    if (err.code === 'network_error' || err.code === 'timeout' || err.code === 'password_change_required') {
      return t(`errors.${err.code}`)
    }
    return err.message
  }
  return t('errors.generic', { message: err instanceof Error ? err.message : String(err) })
}

/** A player problem (live or recorded video) in words. */
export function problemText(problem: LiveProblem, t: Translate): string {
  switch (problem.kind) {
    case 'api':
      return errorText(problem.error, t)
    case 'mse_unsupported':
      return t('live.mseUnsupported')
    case 'codec_unsupported':
      return t('live.codecUnsupported', { codec: problem.codec })
    case 'closed':
      // 1006: the connection broke without a closing message (the node stopped, the network failed).
      return problem.code === 1006 && !problem.reason
        ? t('live.connectionLost')
        : t('live.streamClosed', { reason: problem.reason || `code ${problem.code}` })
    case 'media_error':
      return t('errors.generic', { message: problem.message })
  }
}
