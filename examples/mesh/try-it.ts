/** The "what to try" lines `npm run mesh` prints: each one works as printed, in another terminal. */
export function tryItLines (url: string, token: string, instance: string): string[] {
  const ws = url.replace(/^http/, 'ws')
  const { hostname, port } = new URL(url)
  const wsClient = (path: string, text: string): string =>
    `node --experimental-websocket --no-warnings -e "const w=new WebSocket('${ws}${path}',{headers:{authorization:'Bearer ${token}'}});` +
    `w.onopen=()=>w.send('${text}');w.onmessage=(e)=>{console.log(e.data);w.close()}"`
  // Half-closed once the 101 is in: a FIN before it would end the stream (as in Envoy).
  const shout = `node -e "const s=require('net').connect(${port},'${hostname}');s.write('GET /shout HTTP/1.1\\r\\nhost: mesh\\r\\n` +
    `authorization: Bearer ${token}\\r\\nconnection: upgrade\\r\\nupgrade: shout\\r\\n\\r\\nhello over h2\\n');` +
    's.once(\'data\',()=>s.end());s.pipe(process.stdout)"'
  // Half-closed once the 200 is in, as for shout: the echo answers the FIN with its own.
  const connect = `node -e "const s=require('net').connect(${port},'${hostname}');s.write('CONNECT echo.mesh:7 HTTP/1.1\\r\\nhost: echo.mesh:7\\r\\n` +
    `authorization: Bearer ${token}\\r\\n\\r\\nhello through CONNECT\\n');s.once('data',()=>s.end());s.pipe(process.stdout)"`
  return [
    '  try it (another terminal):',
    `    chat over the H2 hop:   ${wsClient('/chat', 'hello from the terminal')}`,
    `    legacy (TCP pipe):      ${wsClient('/legacy/chat', 'hello the old way')}`,
    `    echo:                   ${wsClient('/echo', 'ping')}`,
    `    non-WebSocket upgrade:  ${shout}`,
    `    CONNECT tunnel (TCP):   ${connect}`,
    `    plain request:          curl -s -H 'authorization: Bearer ${token}' ${url}/hello`,
    `    a refused upgrade:      curl -si -H 'connection: upgrade' -H 'upgrade: websocket' ${url}/chat   (401: no token)`,
    `    crash an app instance:  curl -s -X POST -H 'authorization: Bearer ${token}' ${url}/mesh/apps/${instance}/kill`,
    `    and bring it back:      curl -s -X POST -H 'authorization: Bearer ${token}' ${url}/mesh/apps/${instance}/restart`
  ]
}
