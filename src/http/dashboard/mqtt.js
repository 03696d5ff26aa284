// A minimal MQTT 3.1.1 client over WebSocket for the dashboard's test client: CONNECT,
// SUBSCRIBE, PUBLISH (QoS 0), PINGREQ out; CONNACK, SUBACK, PUBLISH, PINGRESP in. Nothing
// else is needed to check that a deployment routes messages.
"use strict";
(function (global) {
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  function str(s) {
    const b = enc.encode(s);
    return [b.length >> 8, b.length & 255, ...b];
  }

  function remaining(n) {
    const out = [];
    do {
      let d = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) d |= 128;
      out.push(d);
    } while (n > 0);
    return out;
  }

  function packet(first, body) {
    return new Uint8Array([first, ...remaining(body.length), ...body]);
  }

  class MiniMqtt {
    constructor(url, clientId) {
      this.url = url;
      this.clientId = clientId;
      this.nextId = 1;
      this.buf = new Uint8Array(0);
      this.onmessage = () => {};
      this.onclose = () => {};
      this.waiting = new Map();
    }

    connect(keepAlive = 30) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(this.url, ["mqtt"]);
        ws.binaryType = "arraybuffer";
        this.ws = ws;
        this.onconnack = (rc) => (rc === 0 ? resolve() : reject(new Error("CONNACK " + rc)));
        ws.onopen = () => {
          // Protocol "MQTT" level 4, clean session, keep-alive.
          const body = [...str("MQTT"), 4, 0x02, keepAlive >> 8, keepAlive & 255, ...str(this.clientId)];
          ws.send(packet(0x10, body));
          this.ping = setInterval(() => ws.send(new Uint8Array([0xc0, 0])), keepAlive * 500);
        };
        ws.onerror = () => reject(new Error("WebSocket error"));
        ws.onclose = () => {
          clearInterval(this.ping);
          this.onclose();
        };
        ws.onmessage = (ev) => this.feed(new Uint8Array(ev.data));
      });
    }

    subscribe(filter, qos = 0) {
      const id = this.nextId++;
      const body = [id >> 8, id & 255, ...str(filter), qos];
      this.ws.send(packet(0x82, body));
      return new Promise((resolve) => this.waiting.set(id, resolve));
    }

    publish(topic, payload, retain = false) {
      const body = [...str(topic), ...enc.encode(payload)];
      this.ws.send(packet(0x30 | (retain ? 1 : 0), body));
    }

    close() {
      if (this.ws) {
        this.ws.send(new Uint8Array([0xe0, 0]));
        this.ws.close();
      }
    }

    // Splits the byte stream into packets (a WebSocket message may hold several, or part
    // of one).
    feed(bytes) {
      const all = new Uint8Array(this.buf.length + bytes.length);
      all.set(this.buf);
      all.set(bytes, this.buf.length);
      let at = 0;
      for (;;) {
        if (all.length - at < 2) break;
        let len = 0, mult = 1, i = at + 1, done = false;
        for (; i < all.length && i < at + 5; i++) {
          len += (all[i] & 127) * mult;
          mult *= 128;
          if ((all[i] & 128) === 0) { done = true; i++; break; }
        }
        if (!done || all.length < i + len) break;
        this.handle(all[at], all.subarray(i, i + len));
        at = i + len;
      }
      this.buf = all.slice(at);
    }

    handle(first, body) {
      switch (first >> 4) {
        case 2: this.onconnack(body[1]); break;
        case 9: {
          const id = (body[0] << 8) | body[1];
          const done = this.waiting.get(id);
          this.waiting.delete(id);
          if (done) done(body[2]);
          break;
        }
        case 3: {
          const qos = (first >> 1) & 3;
          const tlen = (body[0] << 8) | body[1];
          const topic = dec.decode(body.subarray(2, 2 + tlen));
          let at = 2 + tlen;
          if (qos > 0) at += 2;
          this.onmessage(topic, dec.decode(body.subarray(at)));
          break;
        }
        default: break;
      }
    }
  }

  global.MiniMqtt = MiniMqtt;
})(window);
