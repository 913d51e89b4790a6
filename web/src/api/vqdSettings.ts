// The patrol's sub-stream selectors per manufacturer that an operator sets in the console
// (docs/vqd-patrol.md): GET /vqd/settings lists them beside the configuration's; PUT / DELETE
// /vqd/substream/manufacturers/{key} change them (vqd:manage, audited).

import { get, request } from './client'
import type { DialectSource, StreamDialect, VqdSettings } from './types'

export interface ManufacturerDialect {
  /** Lower-case; matches a device whose reported manufacturer contains it, case ignored. */
  key: string
  dialect: StreamDialect
  set_by: string
  set_at: string
}

export interface SavedManufacturerDialect extends ManufacturerDialect {
  /** The configuration's selector for the same key, which this entry replaces; null: none. */
  config_dialect: StreamDialect | null
}

export interface VqdPatrolSettings extends VqdSettings {
  operator_manufacturers: ManufacturerDialect[]
}

const manufacturerPath = (key: string) => `/vqd/substream/manufacturers/${encodeURIComponent(key)}`

export const vqdSettingsApi = {
  settings: (signal?: AbortSignal) => get<VqdPatrolSettings>('/vqd/settings', undefined, signal),
  setManufacturerDialect: (key: string, dialect: StreamDialect) =>
    request<SavedManufacturerDialect>('PUT', manufacturerPath(key), { body: { dialect } }),
  dropManufacturerDialect: (key: string) => request<void>('DELETE', manufacturerPath(key)),
}

/** Whether an operator set the selector in the console (for a device or its manufacturer). */
export const setByOperator = (source: DialectSource): boolean =>
  source === 'override' || source === 'manufacturer_operator'
