// The mesh page: two WebSockets into the app's chat room (new style over the H2 hop, and legacy),
// and a live view fed by Server-Sent Events. The token rides in the cookie the page was served with.
'use strict'

const base = location.origin.replace(/^http/, 'ws')
const routes = { h2: '/chat', legacy: '/legacy/chat' }
const sockets = {}
const rows = new Map()
let left = false

for (const [via, path] of Object.entries(routes)) connect(via, path)

function connect (via, path) {
  const status = document.querySelector(`[data-conn="${via}"]`)
  const ws = new WebSocket(base + path)
  sockets[via] = ws
  ws.onopen = () => { status.textContent = `${via}: open`; status.className = 'open' }
  ws.onclose = (e) => {
    status.textContent = `${via}: closed (${e.code})`
    status.className = 'closed'
    // An app instance that died took the tunnel with it: reconnect, and the cluster picks a live one.
    if (!left && e.code !== 1000) {
      status.textContent += ', reconnecting'
      setTimeout(() => connect(via, path), 1000)
    }
  }
  ws.onmessage = (e) => showMessage(JSON.parse(e.data), via)
}

function showMessage (m, arrivedOver) {
  let row = rows.get(m.id)
  if (row === undefined) {
    row = document.createElement('li')
    row.dataset.id = m.id
    const who = document.createElement('b')
    who.textContent = m.from + ': '
    const text = document.createElement('span')
    text.className = 'text'
    text.textContent = m.text
    const via = document.createElement('span')
    via.className = 'via'
    via.textContent = ` — sent over ${m.via}, arrived over`
    row.append(who, text, via)
    rows.set(m.id, row)
    document.getElementById('messages').prepend(row)
  }
  const badge = document.createElement('span')
  badge.className = 'badge'
  badge.dataset.arrived = arrivedOver
  badge.dataset.app = m.app
  badge.textContent = `${arrivedOver} · ${m.app}`
  row.append(badge)
}

document.getElementById('send').addEventListener('submit', (e) => {
  e.preventDefault()
  const via = e.submitter?.dataset.via ?? 'h2'
  const input = document.getElementById('text')
  if (input.value === '' || sockets[via].readyState !== WebSocket.OPEN) return
  sockets[via].send(JSON.stringify({ from: document.getElementById('name').value, text: input.value, via }))
  input.value = ''
})

document.getElementById('leave').addEventListener('click', () => {
  left = true
  for (const ws of Object.values(sockets)) ws.close(1000)
})

document.getElementById('refused').addEventListener('click', () => {
  const ws = new WebSocket(base + '/shout')
  ws.onerror = () => {}
})

const seen = {}
const events = new EventSource('/mesh/events')
events.onmessage = (e) => render(JSON.parse(e.data).counters)

function render (counters) {
  for (const cell of document.querySelectorAll('[data-key]')) setCell(cell, counters[cell.dataset.key] ?? 0)
  growTable('upgrades', 'upgrades.', counters)
  growTable('refusals', 'refused.', counters)
  renderEndpoints(counters)
  document.getElementById('draining').hidden = !(counters.draining > 0)
}

// Worst first: with several front processes, an endpoint one of them sees down is shown down.
const healthOrder = ['unhealthy', 'ejected', 'pending', 'healthy']

/** `endpoint|<cluster>|<name>|<address>|<health or tunnels>` counters, one row per endpoint. */
function renderEndpoints (counters) {
  const endpoints = new Map()
  for (const [key, value] of Object.entries(counters)) {
    if (!key.startsWith('endpoint|')) continue
    const [, view, label, address, what] = key.split('|')
    const id = `${view}|${label}`
    const e = endpoints.get(id) ?? { view, label, address, health: {}, tunnels: 0 }
    if (what === 'tunnels') e.tunnels = value
    else e.health[what] = value
    endpoints.set(id, e)
  }
  const body = document.getElementById('endpoints')
  for (const [id, e] of [...endpoints].sort(([a], [b]) => a.localeCompare(b))) {
    let row = body.querySelector(`[data-endpoint="${CSS.escape(id)}"]`)
    if (row === null) row = endpointRow(body, id, e)
    const seen = healthOrder.filter((h) => e.health[h] > 0)
    const health = row.querySelector('[data-health]')
    health.dataset.health = seen[0] ?? 'unknown'
    health.textContent = seen.length > 1 ? `${seen[0]} (${seen.join(' / ')})` : (seen[0] ?? '?')
    row.querySelector('.tunnels').textContent = String(e.tunnels)
  }
}

function endpointRow (body, id, e) {
  const row = document.createElement('tr')
  row.dataset.endpoint = id
  const cells = [e.view, `${e.label} ${e.label === e.address ? '' : e.address}`, '', ''].map((text) => {
    const td = document.createElement('td')
    td.textContent = text
    return td
  })
  cells[2].dataset.health = 'unknown'
  cells[3].className = 'tunnels n'
  const actions = document.createElement('td')
  if (e.label.startsWith('app-')) {
    for (const action of ['kill', 'restart']) {
      const button = document.createElement('button')
      button.type = 'button'
      button.textContent = action
      button.dataset.action = action
      button.dataset.app = e.label
      button.addEventListener('click', () => { fetch(`/mesh/apps/${e.label}/${action}`, { method: 'POST' }) })
      actions.append(button)
    }
  }
  row.append(...cells, actions)
  body.append(row)
  return row
}

/** One row per key under `prefix`, added the first time the key appears. */
function growTable (id, prefix, counters) {
  const body = document.getElementById(id)
  for (const key of Object.keys(counters).filter((k) => k.startsWith(prefix)).sort()) {
    if (body.querySelector(`[data-key="${CSS.escape(key)}"]`) !== null) continue
    const row = document.createElement('tr')
    const name = document.createElement('td')
    name.textContent = key.slice(prefix.length)
    const value = document.createElement('td')
    value.dataset.key = key
    row.append(name, value, document.createElement('td'))
    body.append(row)
    setCell(value, counters[key])
  }
}

function setCell (cell, value) {
  const text = String(value)
  if (cell.textContent === text) return
  cell.textContent = text
  if (seen[cell.dataset.key] !== undefined) {
    cell.classList.add('moved')
    setTimeout(() => cell.classList.remove('moved'), 400)
  }
  seen[cell.dataset.key] = value
}
