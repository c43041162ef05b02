import type { ClusterOptions } from '@switchyard/core'

/** An app instance as the nodes in front of it know it. */
export interface AppEndpoint {
  name: string
  address: string
}

/**
 * The cluster of the app's instances, the same on the sidecar (new style, over the H2 hop) and on the
 * front (legacy routes, straight to the app): least request over open tunnels (a WebSocket stays open,
 * so the instance with fewer of them takes the next), and active health checks of `/healthz`, so a dead
 * instance stops getting new chats within two checks and gets them again two checks after it is back.
 */
export function appCluster (apps: AppEndpoint[], healthCheckInterval: number): ClusterOptions {
  return {
    endpoints: apps.map((a) => a.address),
    lbPolicy: 'leastRequest',
    healthCheck: {
      path: '/healthz',
      interval: healthCheckInterval,
      timeout: Math.min(500, healthCheckInterval),
      unhealthyThreshold: 2,
      healthyThreshold: 2
    }
  }
}
