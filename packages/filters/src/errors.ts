import { defineError } from '@switchyard/core/internal'

/** Configuration error: raised by a `createXFilter(options)` factory, before any stream exists. */
export const SwyFilterOptionsError = defineError('SWY_ERR_FILTER_OPTIONS', 'Invalid option %s of %s: %s', 500)

/** Every code this package can raise; the README's Errors table is checked against it. */
export const errorCodes = ['SWY_ERR_FILTER_OPTIONS'] as const
