// Interoperability with MQTT.js (npm `mqtt` 5.x) speaking MQTT 5 against the real broker
// binary, which tests/interop/test_mqttjs.py starts and names in SUPERMQ_PORT. Run by hand:
//   SUPERMQ_PORT=1883 node --test tests/interop/js/
// Every wait has a timeout; where a test shows that something did not arrive, a QoS 1 marker
// published afterwards is awaited instead (the broker keeps each subscriber's messages in order).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';

const PORT = Number(process.env.SUPERMQ_PORT);
const WAIT_MS = 10_000;
assert.ok(PORT > 0, 'SUPERMQ_PORT must name the broker port');

const open = [];
after(async () => {
  await Promise.all(open.map((c) => c.endAsync(true).catch(() => {})));
});

/** Connects at MQTT 5; collects messages and received packets into queues. */
async function connect(clientId, options = {}) {
  const client = mqtt.connect({
    host: '127.0.0.1',
    port: PORT,
    protocolVersion: 5,
    clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    keepalive: 30,
    ...options,
  });
  open.push(client);
  const msgs = [];
  const waiters = [];
  client.on('message', (topic, payload, packet) => {
    msgs.push({ topic, payload: payload.toString(), packet });
    while (waiters.length && msgs.length) waiters.shift()();
  });
  client.pubacks = [];
  client.on('packetreceive', (p) => {
    if (p.cmd === 'puback' || p.cmd === 'pubrec') client.pubacks.push(p);
  });
  client.next = () =>
    new Promise((resolve, reject) => {
      const take = () => {
        clearTimeout(timer);
        resolve(msgs.shift());
      };
      const timer = setTimeout(() => {
        const i = waiters.indexOf(take);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`${clientId}: no message within ${WAIT_MS} ms`));
      }, WAIT_MS);
      if (msgs.length) take();
      else waiters.push(take);
    });
  client.untilBarrier = async (topic) => {
    const before = [];
    for (;;) {
      const m = await client.next();
      if (m.topic === topic && m.payload === 'barrier') return before;
      before.push(m);
    }
  };
  client.connack = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${clientId}: no CONNACK`)), WAIT_MS);
    client.once('connect', (ack) => {
      clearTimeout(timer);
      resolve(ack);
    });
    client.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return client;
}

test('CONNACK properties', async () => {
  const c = await connect('');
  const p = c.connack.properties;
  assert.equal(p.receiveMaximum, 20);
  assert.equal(p.topicAliasMaximum, 10);
  assert.ok(p.assignedClientIdentifier, 'an empty client id gets one assigned');
});

test('publish properties round trip', async () => {
  const sub = await connect('js5-props-sub');
  const pub = await connect('js5-props-pub');
  await sub.subscribeAsync('js5/props/#', { qos: 1 });
  await pub.publishAsync('js5/props/a', '{"x":1}', {
    qos: 1,
    properties: {
      userProperties: { k1: 'v1', k2: ['a', 'b'] },
      contentType: 'application/json',
      responseTopic: 'js5/props/reply',
      correlationData: Buffer.from([0, 1, 2, 0xff]),
      payloadFormatIndicator: true,
    },
  });
  const m = await sub.next();
  const p = m.packet.properties;
  assert.equal(m.payload, '{"x":1}');
  assert.deepEqual({ ...p.userProperties }, { k1: 'v1', k2: ['a', 'b'] });
  assert.equal(p.contentType, 'application/json');
  assert.equal(p.responseTopic, 'js5/props/reply');
  assert.deepEqual(p.correlationData, Buffer.from([0, 1, 2, 0xff]));
  assert.equal(p.payloadFormatIndicator, true);
});

test('message expiry interval is forwarded, never above what was sent', async () => {
  const sub = await connect('js5-exp-sub');
  const pub = await connect('js5-exp-pub');
  await sub.subscribeAsync('js5/exp', { qos: 1 });
  await pub.publishAsync('js5/exp', 'e', { qos: 1, properties: { messageExpiryInterval: 30 } });
  const m = await sub.next();
  const exp = m.packet.properties.messageExpiryInterval;
  assert.ok(exp > 0 && exp <= 30, `expiry ${exp}`);
  await pub.publishAsync('js5/exp', 'n', { qos: 1 });
  assert.equal((await sub.next()).packet.properties?.messageExpiryInterval, undefined);
});

test('topic aliases: client assigns them, broker assigns its own towards the client', async () => {
  // The subscriber accepts aliases from the broker; MQTT.js resolves them to topics.
  const sub = await connect('js5-alias-sub', { properties: { topicAliasMaximum: 5 } });
  const pub = await connect('js5-alias-pub', { autoAssignTopicAlias: true });
  await sub.subscribeAsync('js5/alias/+', { qos: 1 });
  const sent = [];
  pub.on('packetsend', (p) => {
    if (p.cmd === 'publish') sent.push({ topic: p.topic, alias: p.properties?.topicAlias });
  });
  for (const [topic, payload] of [
    ['js5/alias/one', '1'],
    ['js5/alias/one', '2'],
    ['js5/alias/two', '3'],
    ['js5/alias/one', '4'],
  ]) {
    await pub.publishAsync(topic, payload, { qos: 1 });
  }
  // MQTT.js sent alias-only PUBLISH packets for repeated topics.
  assert.ok(
    sent.some((s) => s.topic === '' && s.alias > 0),
    `no alias-only publish sent: ${JSON.stringify(sent)}`,
  );
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await sub.next());
  assert.deepEqual(
    got.map((m) => [m.topic, m.payload]),
    [
      ['js5/alias/one', '1'],
      ['js5/alias/one', '2'],
      ['js5/alias/two', '3'],
      ['js5/alias/one', '4'],
    ],
  );
  // The broker used aliases within the subscriber's maximum.
  const aliases = got.map((m) => m.packet.properties?.topicAlias);
  assert.ok(aliases.every((a) => a >= 1 && a <= 5), `aliases ${aliases}`);
});

test('topic alias: explicit alias then alias-only publish (autoUseTopicAlias)', async () => {
  const sub = await connect('js5-alias2-sub');
  const pub = await connect('js5-alias2-pub', { autoUseTopicAlias: true });
  await sub.subscribeAsync('js5/alias2', { qos: 1 });
  await pub.publishAsync('js5/alias2', 'a', { qos: 1, properties: { topicAlias: 3 } });
  await pub.publishAsync('', 'b', { qos: 1, properties: { topicAlias: 3 } });
  await pub.publishAsync('js5/alias2', 'c', { qos: 1 }); // auto use: sent as alias 3 only
  const got = [await sub.next(), await sub.next(), await sub.next()];
  assert.deepEqual(
    got.map((m) => [m.topic, m.payload]),
    [
      ['js5/alias2', 'a'],
      ['js5/alias2', 'b'],
      ['js5/alias2', 'c'],
    ],
  );
  // No alias was set up towards this subscriber (it allows none).
  assert.ok(got.every((m) => m.packet.properties?.topicAlias === undefined));
});

test('shared subscription delivers each message once in total', async () => {
  const a = await connect('js5-share-a');
  const b = await connect('js5-share-b');
  const pub = await connect('js5-share-pub');
  for (const s of [a, b]) {
    await s.subscribeAsync('$share/g/js5/share/t', { qos: 1 });
    await s.subscribeAsync('js5/share/marker', { qos: 1 });
  }
  const n = 40;
  for (let i = 0; i < n; i++) await pub.publishAsync('js5/share/t', String(i), { qos: 1 });
  await pub.publishAsync('js5/share/marker', 'barrier', { qos: 1 });
  const all = [...(await a.untilBarrier('js5/share/marker')), ...(await b.untilBarrier('js5/share/marker'))];
  assert.deepEqual(
    all.map((m) => Number(m.payload)).sort((x, y) => x - y),
    [...Array(n).keys()],
  );
});

test('subscription identifiers and PUBACK 0x10 when nobody subscribes', async () => {
  const sub = await connect('js5-subid');
  const pub = await connect('js5-subid-pub');
  await sub.subscribeAsync('js5/subid/+', { qos: 1, properties: { subscriptionIdentifier: 42 } });
  await pub.publishAsync('js5/subid/x', 'x', { qos: 1 });
  const m = await sub.next();
  const ids = [m.packet.properties.subscriptionIdentifier].flat();
  assert.deepEqual(ids, [42]);
  assert.equal(pub.pubacks.at(-1).reasonCode ?? 0, 0);
  await pub.publishAsync('js5/nobody/here', 'x', { qos: 1 });
  assert.equal(pub.pubacks.at(-1).reasonCode, 0x10);
});

test('QoS 1 burst with a small receive maximum: all delivered, in order', async () => {
  const sub = await connect('js5-burst-sub', { properties: { receiveMaximum: 3 } });
  const pub = await connect('js5-burst-pub');
  await sub.subscribeAsync('js5/burst', { qos: 1 });
  // MQTT.js does not limit its own in-flight window: publish in windows of the broker's
  // Receive Maximum, as the specification asks of the client [MQTT-3.3.4-7].
  const window = pub.connack.properties.receiveMaximum;
  const n = 200;
  for (let i = 0; i < n; i += window) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + window); j++) {
      batch.push(pub.publishAsync('js5/burst', String(j), { qos: 1 }));
    }
    await Promise.all(batch);
  }
  const got = [];
  for (let i = 0; i < n; i++) got.push(Number((await sub.next()).payload));
  assert.deepEqual(got, [...Array(n).keys()]);
  assert.ok(pub.connected && sub.connected);
});
