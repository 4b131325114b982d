// Fetch IPFS paths with @helia/verified-fetch, using one gateway as its only trustless gateway
// (blocks as ?format=raw, each checked against its CID before use). For tests/test_clients.py.
//
//   node verified_fetch.mjs http://127.0.0.1:PORT <cid>[/path] ...
//
// Prints one JSON line per path: {path, status, type, length, sha256} or {path, error}; exits 1 if
// any fetch failed. Nothing but the given gateway is contacted: no delegated routers, no libp2p.

// verified-fetch 8 uses Promise.withResolvers (Node 22); Node 20 lacks it
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { createHash } = await import('node:crypto')
const { createHeliaLight } = await import('helia')
const { withHTTP } = await import('@helia/http')
const { fallbackRouter } = await import('@helia/fallback-router')
const { createVerifiedFetchWithHelia } = await import('@helia/verified-fetch')

const [gateway, ...paths] = process.argv.slice(2)
if (gateway == null || paths.length === 0) {
  console.error('usage: node verified_fetch.mjs GATEWAY_URL CID[/PATH]...')
  process.exit(2)
}

const helia = withHTTP(createHeliaLight({}), {
  delegatedRouters: [],
  recursiveGateways: [],
  allowInsecure: true, // http://127.0.0.1
  allowLocal: true
})
// The gateway as an ordinary (not "fallback") router: helia's routing waits forever when it has
// fallback routers only.
const gateways = fallbackRouter({ gateways: [gateway], shuffle: false })
helia.addRouter({ name: 'ipmirror-gateway', findProviders: (cid, options) => gateways.findProviders(cid, options) })
await helia.start()
const verifiedFetch = await createVerifiedFetchWithHelia(helia)

// AbortSignal.timeout does not keep the event loop alive: without this, a fetch that waits for a
// block no provider gives (the gateway sent a wrong one, which verification dropped) would end the
// process silently (exit 13) instead of failing with a timeout
const keepAlive = setInterval(() => {}, 1_000)
let failed = 0
for (const path of paths) {
  try {
    const res = await verifiedFetch(`ipfs://${path}`, { signal: AbortSignal.timeout(20_000) })
    const body = Buffer.from(await res.arrayBuffer())
    console.log(JSON.stringify({
      path,
      status: res.status,
      type: res.headers.get('content-type'),
      length: body.length,
      sha256: createHash('sha256').update(body).digest('hex')
    }))
  } catch (err) {
    failed++
    console.log(JSON.stringify({ path, error: String(err) }))
  }
}
clearInterval(keepAlive)
await verifiedFetch.stop()
await helia.stop()
process.exit(failed > 0 ? 1 : 0)
