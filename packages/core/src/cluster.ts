// The cluster manager lives in `cluster/`; this path stays for the modules that import it from here.
export { Cluster, type ChooseContext, type ClusterDeps, type ClusterLog, type EndpointStatus } from './cluster/cluster.js'
export { Host, type Closable, type HostHealth } from './cluster/host.js'
export { CircuitBreakers, defaultCircuitBreakers, type CircuitBreakerLimits } from './cluster/circuit-breakers.js'
export { parseEndpoint, type Endpoint } from './cluster/endpoint.js'
export { compileHashPolicy, type HashFunction, type HashInput, type HashResult } from './cluster/hash-policy.js'
export type { Outcome } from './cluster/outlier-detector.js'
