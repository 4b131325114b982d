// Read CAR files with @ipld/car and check every block against its CID.
//
// Usage: node verify_car.mjs FILE.car [FILE.car...]
//
// Prints one JSON line per file on stdout:
//   {"file": F, "roots": [CID...], "blocks": N, "unique": N, "ok": bool, "errors": [...], "cids": [...]}
// - sha2-256 blocks are re-hashed with multiformats; identity CIDs must have digest == bytes;
//   any other hash function is reported as an error (the CARs under test only use these two).
// - dag-pb blocks (0x70) must also decode with @ipld/dag-pb (which rejects non-canonical forms).
// Exit status: 0 when every file is ok, 1 when a block failed a check or a CAR could not be parsed.
import fs from 'node:fs'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagPB from '@ipld/dag-pb'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

async function verify (file) {
  const result = { file, roots: [], blocks: 0, unique: 0, ok: true, errors: [], cids: [] }
  const fail = (msg) => {
    result.ok = false
    result.errors.push(msg)
  }
  const seen = new Set()
  try {
    const iter = await CarBlockIterator.fromIterable(fs.createReadStream(file))
    result.roots = (await iter.getRoots()).map((c) => c.toString())
    for await (const { cid, bytes } of iter) {
      const key = cid.toString()
      result.blocks++
      result.cids.push(key)
      if (!seen.has(key)) {
        seen.add(key)
        result.unique++
      }
      const mh = cid.multihash
      if (mh.code === sha256.code) {
        if (!equals((await sha256.digest(bytes)).digest, mh.digest)) {
          fail(`${key}: bytes do not match the CID`)
          continue
        }
      } else if (mh.code === 0x00) {
        if (!equals(mh.digest, bytes)) {
          fail(`${key}: identity digest differs from the block bytes`)
          continue
        }
      } else {
        fail(`${key}: unsupported hash function 0x${mh.code.toString(16)}`)
        continue
      }
      if (cid.code === dagPB.code) {
        try {
          dagPB.decode(bytes)
        } catch (e) {
          fail(`${key}: not valid dag-pb: ${e.message}`)
        }
      }
    }
  } catch (e) {
    fail(`cannot read CAR: ${e.message}`)
  }
  return result
}

const files = process.argv.slice(2)
if (files.length === 0) {
  console.error('usage: node verify_car.mjs FILE.car [FILE.car...]')
  process.exit(2)
}
let ok = true
let text = ''
for (const file of files) {
  const result = await verify(file)
  ok &&= result.ok
  text += JSON.stringify(result) + '\n'
}
// exit only once stdout is flushed: a pipe write is asynchronous and process.exit() would cut it
process.stdout.write(text, () => process.exit(ok ? 0 : 1))
