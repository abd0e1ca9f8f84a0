// Apache OpenWhisk's official JavaScript client (npm `openwhisk`, pinned in package.json)
// against lambdaroute's gateway. Started by rust/cli/tests/openwhisk.rs, which runs the
// gateway, a router and computers on loopback and passes:
//   OW_APIHOST   http://127.0.0.1:PORT (the gateway)
//   OW_KEY       a key of the gateway's keys file (namespace guest)
//   OW_FAILING   an action whose function fails (HTTP 502 expected)
// Prints one line per check; exits 1 at the first failure.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')

const apihost = process.env.OW_APIHOST
const key = process.env.OW_KEY
const failing = process.env.OW_FAILING
assert.ok(apihost && key && failing, 'set OW_APIHOST, OW_KEY and OW_FAILING')

const ow = openwhisk({ apihost, api_key: key })
const checks = []
const check = (name, fn) => checks.push([name, fn])
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const annotation = (record, k) => (record.annotations.find((a) => a.key === k) || {}).value

async function rejects (promise, status, fragment) {
  try {
    await promise
  } catch (error) {
    assert.equal(error.statusCode, status, `HTTP ${status} expected, got ${error.statusCode}: ${error.message}`)
    if (fragment) assert.match(error.message, fragment)
    return error
  }
  assert.fail(`HTTP ${status} expected, the call succeeded`)
}

check('namespaces.list: the key\'s namespace', async () => {
  assert.deepEqual(await ow.namespaces.list(), ['guest'])
})

check('actions.list: the lambdas of the router\'s table', async () => {
  const actions = await ow.actions.list()
  const names = actions.map((a) => a.name).sort()
  assert.ok(names.includes('clambda0'), JSON.stringify(names))
  const action = actions.find((a) => a.name === 'clambda0')
  assert.equal(action.namespace, 'guest')
  assert.equal(action.version, '0.0.1')
  const limited = await ow.actions.list({ limit: 1 })
  assert.equal(limited.length, 1)
})

check('actions.get: one action', async () => {
  const action = await ow.actions.get({ name: 'clambda0' })
  assert.equal(action.name, 'clambda0')
})

check('invoke, blocking, result: the function\'s JSON result', async () => {
  const result = await ow.actions.invoke({ name: 'clambda0', blocking: true, result: true, params: { input: 'hello' } })
  assert.deepEqual(result, { output: 'hello' })
  // JSON parameters go through as the call's input and come back as the result's object
  const echoed = await ow.actions.invoke({ name: 'clambda0', blocking: true, result: true, params: { city: 'Pisa', n: 3 } })
  assert.deepEqual(echoed, { city: 'Pisa', n: 3 })
})

check('invoke, blocking, no result: the activation record', async () => {
  const record = await ow.actions.invoke({ name: 'clambda0', blocking: true, params: { input: 'abc' } })
  assert.match(record.activationId, /^[0-9a-f]{32}$/)
  assert.equal(record.namespace, 'guest')
  assert.equal(record.name, 'clambda0')
  assert.equal(record.response.status, 'success')
  assert.equal(record.response.statusCode, 0)
  assert.equal(record.response.success, true)
  assert.deepEqual(record.response.result, { output: 'abc' })
  assert.ok(record.end >= record.start && record.duration === record.end - record.start)
  assert.match(annotation(record, 'responder'), /^127\.0\.0\.1:\d+$/)
  assert.equal(annotation(record, 'hops'), 2)
})

check('invoke, the wsk CLI\'s way (?blocking=true&result=true): the bare result', async () => {
  const auth = 'Basic ' + Buffer.from(key).toString('base64')
  const response = await fetch(`${apihost}/api/v1/namespaces/_/actions/clambda0?blocking=true&result=true`, {
    method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: '{"input":"x"}'
  })
  assert.equal(response.status, 200)
  assert.match(response.headers.get('x-openwhisk-activation-id'), /^[0-9a-f]{32}$/)
  assert.deepEqual(await response.json(), { output: 'x' })
})

check('binary data: base64 in, base64 out', async () => {
  const data = Buffer.from([0, 1, 2, 250, 255]).toString('base64')
  const result = await ow.actions.invoke({ name: 'clambda0', blocking: true, result: true, params: { datain: data } })
  assert.deepEqual(result, { dataout: data })
})

check('invoke, non-blocking: 202 and an activation id; then activations get, result, logs, list', async () => {
  const accepted = await ow.actions.invoke({ name: 'clambda0', params: { input: 'later' } })
  assert.deepEqual(Object.keys(accepted), ['activationId'])
  const id = accepted.activationId
  let record
  for (let i = 0; i < 100 && !record; i++) {
    try {
      record = await ow.activations.get({ name: id })
    } catch (error) {
      assert.equal(error.statusCode, 404)
      await sleep(50)
    }
  }
  assert.ok(record, 'the activation was never recorded')
  assert.equal(record.activationId, id)
  assert.deepEqual(record.response.result, { output: 'later' })
  const result = await ow.activations.result({ name: id })
  assert.equal(result.success, true)
  assert.deepEqual(result.result, { output: 'later' })
  const logs = await ow.activations.logs({ name: id })
  assert.equal(logs.logs.length, 1)
  assert.match(logs.logs[0], /stdout: lambdaroute: guest\/clambda0 success \(responder 127\.0\.0\.1:\d+, hops 2/)
  const listed = await ow.activations.list({ limit: 5 })
  assert.ok(listed.some((a) => a.activationId === id), 'the activation is listed')
})

check('an unknown activation: 404', async () => {
  await rejects(ow.activations.get({ name: '0'.repeat(32) }), 404, /does not exist/)
})

check('an unknown action: 404 on invoke and get', async () => {
  await rejects(ow.actions.invoke({ name: 'nope', blocking: true, result: true }), 404, /The requested resource does not exist/)
  await rejects(ow.actions.get({ name: 'nope' }), 404)
})

check('a failed function: 502 with the error, the activation says application error', async () => {
  const error = await rejects(ow.actions.invoke({ name: failing, blocking: true, result: true }), 502, /Error: /)
  assert.equal(error.error.response.success, false)
  assert.equal(error.error.response.status, 'application error')
  assert.match(error.error.response.result.error, /^Error: /)
})

check('a bad key: 401', async () => {
  const bad = openwhisk({ apihost, api_key: key.split(':')[0] + ':wrong' })
  await rejects(bad.actions.list(), 401, /The supplied authentication is invalid/)
  await rejects(bad.actions.invoke({ name: 'clambda0', blocking: true }), 401)
})

check('another namespace: 403', async () => {
  await rejects(ow.actions.list({ namespace: 'someoneelse' }), 403, /not authorized/)
})

let failed = 0
for (const [name, fn] of checks) {
  try {
    await fn()
    console.log(`ok   ${name}`)
  } catch (error) {
    failed += 1
    console.log(`FAIL ${name}\n     ${error.stack || error}`)
  }
}
console.log(`${checks.length - failed} of ${checks.length} checks passed`)
process.exit(failed ? 1 : 0)
