import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * An HAProxy configuration file in `dir`: one thread, HTTP mode, one frontend `bind` line and one backend
 * `server` line; the tunnel timeout covers an upgraded connection (HAProxy switches to tunnel mode after
 * the 101). `maxconn` 9000: HAProxy reserves 2 fds per connection and refuses to start above the open-files
 * limit (20,000 here). Returns the file's path.
 */
export function haproxyConfig (dir: string, name: string, bind: string, server: string): string {
  const file = join(dir, `${name}.cfg`)
  writeFileSync(file, [
    'global', '  maxconn 9000', '  nbthread 1',
    'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  timeout tunnel 1h',
    'frontend fe', `  ${bind}`, '  default_backend be',
    'backend be', `  ${server}`, ''
  ].join('\n'))
  return file
}
