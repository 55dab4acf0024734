'use client'
/**
 * belfry/react: a provider and hooks for React 18 and 19.
 *
 * @example
 * import { NotificationClient } from 'belfry'
 * import { BelfryProvider, useUnreadCount } from 'belfry/react'
 *
 * const Bell = () => <span>{useUnreadCount()}</span>
 * <BelfryProvider client={() => new NotificationClient({ url: '/ws', token: fetchToken })}><Bell /></BelfryProvider>
 */

export {
  BelfryProvider,
  type BelfryProviderProps,
  useBelfryClient,
  useConnectionState,
  useNotificationEvent,
  useNotifications,
  useUnreadCount,
} from './binding.js'
export type { ConnectionInfo, Notifications } from './store.js'
