import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { missingBinary } from '../lib/binary.ts'
import type { ProxyMode } from './mode.ts'

/**
 * Debian's nginx as a WebSocket reverse proxy, configured as its documentation says
 * (nginx.org/en/docs/http/websocket.html): HTTP/1.1 upstream, `Upgrade` and `Connection` copied from
 * the request, buffering off. One worker; a master and the worker in the foreground (`daemon off`) with
 * their own prefix, configuration, logs and temp paths in a temp dir. Both processes are measured.
 */
export const mode: ProxyMode = {
  name: 'nginx',
  description: 'nginx, one worker, `proxy_http_version 1.1`, Upgrade/Connection from the request, buffering off',
  order: 40,
  unavailable: async () => missingBinary('nginx', 'nginx'),
  start: async (host, upstream) => {
    const dir = host.tempDir()
    const port = await host.freePort()
    const conf = join(dir, 'nginx.conf')
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub))
    writeFileSync(conf, [
      // Root would hand the worker to `nobody`, who cannot write this root-owned temp dir.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'daemon off;',
      'worker_processes 1;',
      'worker_rlimit_nofile 20000;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 16000; }',
      'http {',
      '  access_log off;',
      ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((sub) => `  ${sub === 'body' ? 'client_body' : sub}_temp_path ${join(dir, sub)};`),
      `  upstream echo { server 127.0.0.1:${upstream.port}; }`,
      '  server {',
      `    listen 127.0.0.1:${port} backlog=4096;`,
      '    location / {',
      '      proxy_pass http://echo;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Upgrade $http_upgrade;',
      '      proxy_set_header Connection $http_connection;',
      '      proxy_buffering off;',
      '      proxy_request_buffering off;',
      '      proxy_read_timeout 1h;',
      '      proxy_send_timeout 1h;',
      '    }',
      '  }',
      '}',
      ''
    ].join('\n'))
    return host.spawn('nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], port)
  }
}
