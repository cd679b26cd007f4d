// verified-fetch (written by others) reading through a gateway: every block it receives
// is hashed and checked by it, never trusted. Prints one JSON array of results.
// Usage: node fetch.mjs GATEWAY_URL TIMEOUT_MS '[{"url": "ipfs://CID/path", "accept": "..."}]'
import { withHTTP } from '@helia/http'
import { createVerifiedFetchWithHelia } from '@helia/verified-fetch'
import { createHeliaLight } from 'helia'
import * as dagCbor from '@ipld/dag-cbor'

const [gateway, timeoutMs, requests] = process.argv.slice(2)
const helia = await withHTTP(createHeliaLight({ codecs: [dagCbor] }), {
  delegatedRouters: [gateway], recursiveGateways: [gateway], allowInsecure: true, allowLocal: true
}).start()
const vfetch = await createVerifiedFetchWithHelia(helia)
const results = []
// A timer of our own as well as the signal: a fetch that never settles (a block that
// never verifies) must still end, and a pending timer keeps node from exiting meanwhile.
const within = (promise, ms) => {
  let timer
  const expiry = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer))
}
for (const { url, accept } of JSON.parse(requests)) {
  try {
    const fetching = vfetch(url, { signal: AbortSignal.timeout(Number(timeoutMs)), headers: accept ? { accept } : {} })
    const response = await within(fetching, Number(timeoutMs) + 1000)
    const body = Buffer.from(await within(response.arrayBuffer(), Number(timeoutMs) + 1000))
    results.push({ url, status: response.status, type: response.headers.get('content-type'), body: body.toString('base64') })
  } catch (e) {
    results.push({ url, error: `${e.name}: ${e.message}` })
  }
}
await vfetch.stop()
await helia.stop()
// exit once stdout is flushed (a pipe is written asynchronously): helia may leave timers
process.stdout.write(JSON.stringify(results) + '\n', () => process.exit(0))
