// A Helia node (js-libp2p 3: TCP + Noise + Yamux, identify, ping, gossipsub) driven over stdin/stdout,
// one JSON object per line, for the libp2p interop tests (tests/test_peer_*.py) and bench/peer.py.
//
// Start: node peer.mjs  ->  prints {"event":"ready","peerId":...,"addrs":[...]} once listening on 127.0.0.1.
// Requests: {"id":N,"cmd":NAME,...}  ->  {"id":N,"ok":true,...} or {"id":N,"ok":false,"error":"..."}.
// Commands: dial {addr}, hangup {peer}, peers, identify {peer}, ping {peer}, subscribe {topic},
// publish {topic,data}, send {peer,bytes} (upload to the peer's sink), recv {peer,bytes} (download from
// the peer's source), stop.  Events: {"event":"message","topic","from","data"} for gossipsub messages.
// Bench protocols served here and by bench/peer.py's ipmirror side:
//   /ipmirror/bench/sink/1.0.0   read to EOF, answer the byte count as 8 bytes big-endian, close.
//   /ipmirror/bench/source/1.0.0 read an 8-byte big-endian count N, send N bytes, close.
// Listens on loopback only; no discovery, no routers, no gateways: it talks only to peers it is told about.
import { createHelia } from 'helia'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createInterface } from 'node:readline'

const SINK = '/ipmirror/bench/sink/1.0.0'
const SOURCE = '/ipmirror/bench/source/1.0.0'
const CHUNK = 256 * 1024

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const helia = await createHelia({
  http: { delegatedRouters: [], recursiveGateways: [] },
  libp2p: {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false })
    }
  }
})
await helia.start()
const node = helia.libp2p

async function sendAll (stream, total) {
  const buf = new Uint8Array(CHUNK).fill(0x61)
  let left = total
  while (left > 0) {
    const n = Math.min(left, CHUNK)
    if (!stream.send(n === CHUNK ? buf : buf.subarray(0, n))) await stream.onDrain()
    left -= n
  }
}

async function readAll (stream, first = 0) {
  let n = 0
  let head = new Uint8Array(0)
  for await (const chunk of stream) {
    const b = chunk.subarray()
    if (head.length < first) {
      const need = first - head.length
      head = concat(head, b.subarray(0, need))
      n += Math.max(0, b.length - need)
    } else n += b.length
  }
  return { n, head }
}

function concat (a, b) { const r = new Uint8Array(a.length + b.length); r.set(a); r.set(b, a.length); return r }
const u64 = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n)); return b }
const readU64 = (b) => Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0))

await node.handle(SINK, async (stream) => {
  const { n } = await readAll(stream)
  stream.send(u64(n))
  await stream.close()
}, { runOnLimitedConnection: false })

await node.handle(SOURCE, async (stream) => {
  let head = new Uint8Array(0)
  for await (const chunk of stream) {
    head = concat(head, chunk.subarray())
    if (head.length >= 8) break
  }
  await sendAll(stream, readU64(head))
  await stream.close()
})

node.services.pubsub.addEventListener('message', (evt) => {
  const m = evt.detail
  out({ event: 'message', topic: m.topic, from: m.from?.toString(), data: new TextDecoder().decode(m.data) })
})

const peer = (s) => peerIdFromString(s)

const commands = {
  async dial ({ addr }) {
    const conn = await node.dial(multiaddr(addr))
    return { peer: conn.remotePeer.toString() }
  },
  async hangup ({ peer: p }) { await node.hangUp(peer(p)); return {} },
  async peers () {
    return { peers: node.getConnections().map(c => ({ peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction })) }
  },
  async identify ({ peer: p }) {
    const conn = node.getConnections(peer(p))[0]
    if (conn == null) throw new Error('not connected')
    const r = await node.services.identify.identify(conn)
    return { peer: r.peerId.toString(), agentVersion: r.agentVersion, protocolVersion: r.protocolVersion, protocols: r.protocols, listenAddrs: r.listenAddrs.map(String), observedAddr: r.observedAddr?.toString() }
  },
  async ping ({ peer: p }) { return { rtt: await node.services.ping.ping(peer(p)) } },
  async subscribe ({ topic }) { node.services.pubsub.subscribe(topic); return {} },
  async topicPeers ({ topic }) { return { peers: node.services.pubsub.getSubscribers(topic).map(String) } },
  async publish ({ topic, data }) {
    const r = await node.services.pubsub.publish(topic, new TextEncoder().encode(data))
    return { recipients: r.recipients.map(String) }
  },
  async send ({ peer: p, bytes }) {
    const t0 = process.hrtime.bigint()
    const stream = await node.dialProtocol(peer(p), SINK)
    await sendAll(stream, bytes)
    await stream.close()
    const { head } = await readAll(stream, 8)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    return { bytes: readU64(head), seconds }
  },
  async recv ({ peer: p, bytes }) {
    const t0 = process.hrtime.bigint()
    const stream = await node.dialProtocol(peer(p), SOURCE)
    stream.send(u64(bytes))
    await stream.close()
    const { n } = await readAll(stream)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    return { bytes: n, seconds }
  },
  async stop () { await helia.stop(); setTimeout(() => process.exit(0), 10); return {} }
}

out({ event: 'ready', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String), agentVersion: `helia` })

const rl = createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let req
  try { req = JSON.parse(line) } catch { return }
  try {
    const fn = commands[req.cmd]
    if (fn == null) throw new Error(`unknown command ${req.cmd}`)
    out({ id: req.id, ok: true, ...(await fn(req)) })
  } catch (err) {
    out({ id: req.id, ok: false, error: String(err?.message ?? err) })
  }
})
rl.on('close', async () => { await helia.stop().catch(() => {}); process.exit(0) })
