// Locks the sandbox down: evaluated in every fresh V8 context right after isolate_runtime.js and
// before any action code. It (1) removes every global that is not on the allow-list, (2) refuses
// to go on if code generation from strings is enabled, (3) removes the RegExp statics, which carry
// the last match from one execution to the next, and (4) freezes every built-in reachable from the
// global object or from syntax, and the global object itself, so that no execution can change the
// environment of the next one.
(() => {
  "use strict";

  const { defineProperty, freeze, getOwnPropertyDescriptor, getPrototypeOf } = Object;
  const { apply: reflectApply, deleteProperty, ownKeys } = Reflect;

  // ECMAScript built-ins only. Left out on purpose: WebAssembly (native code), SharedArrayBuffer
  // and Atomics (shared memory, and the timers mini-racer would build on them),
  // FinalizationRegistry (its callbacks run between executions, outside every time limit), and
  // V8's own console (isolate_runtime.js has put a capturing one in its place).
  const ALLOWED_GLOBALS = new Set([
    "globalThis", "Infinity", "NaN", "undefined",
    "eval", "isFinite", "isNaN", "parseFloat", "parseInt",
    "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape", "unescape",
    "Object", "Function", "Array", "Number", "Boolean", "String", "Symbol", "BigInt", "Date", "RegExp",
    "Promise", "Proxy", "Reflect", "JSON", "Math", "Intl", "Temporal", "Iterator",
    "Error", "AggregateError", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError",
    "URIError", "SuppressedError",
    "ArrayBuffer", "DataView", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array",
    "BigUint64Array",
    "Map", "Set", "WeakMap", "WeakSet", "WeakRef", "DisposableStack", "AsyncDisposableStack",
    "console",
  ]);

  // ---- 1. The global object holds allow-listed names only ------------------------------------

  for (const name of ownKeys(globalThis)) {
    if (typeof name === "string" && ALLOWED_GLOBALS.has(name)) continue;
    if (!deleteProperty(globalThis, name)) {
      throw new Error(`sandbox set-up could not remove the global ${String(name)}`);
    }
  }

  // ---- 2. No code generation from strings ---------------------------------------------------

  // The worker starts V8 with --disallow-code-generation-from-strings; refuse to run actions in a
  // context where that did not take effect rather than silently allowing eval.
  try {
    reflectApply(globalThis.eval, undefined, ["0"]);
    throw new Error("sandbox set-up found code generation from strings enabled");
  } catch (error) {
    if (!(error instanceof EvalError)) throw error;
  }

  // ---- 3. No state kept by RegExp -------------------------------------------------------------

  // Annex B's RegExp statics (RegExp.input/$_, lastMatch/$&, lastParen/$+, leftContext/$`,
  // rightContext/$', $1-$9) are accessors over the last match of the whole context, not of any
  // object the action owns: the next execution of a warm isolate (another user's sign-in) would
  // read the previous user's email, and RegExp.input can be set. Freezing does not help, an
  // accessor's setter still works. compile() re-targets a RegExp in place (also Annex B).
  const REGEXP_OWN_KEYS = new Set(["length", "name", "prototype", "escape", Symbol.species]);
  for (const key of ownKeys(RegExp)) {
    if (REGEXP_OWN_KEYS.has(key)) continue;
    if (!deleteProperty(RegExp, key)) {
      throw new Error(`sandbox set-up could not remove RegExp.${String(key)}`);
    }
  }
  if (!deleteProperty(RegExp.prototype, "compile")) {
    throw new Error("sandbox set-up could not remove RegExp.prototype.compile");
  }

  // ---- 4. Freeze the built-ins ----------------------------------------------------------------

  // Freezing turns inherited data properties into read-only ones, and assigning to a read-only
  // inherited property throws in strict code, so ordinary code such as `this.name = "MyError"` in
  // an Error subclass would break. These accessors keep such assignments working: the setter
  // defines an own property on the receiver and refuses to change the built-in itself.
  const allowOverride = (proto, name) => {
    const descriptor = getOwnPropertyDescriptor(proto, name);
    if (!descriptor || !("value" in descriptor)) return;
    const original = descriptor.value;
    defineProperty(proto, name, {
      get: function getBuiltin() {
        return original;
      },
      set: function setOwn(value) {
        if (this === proto) {
          throw new TypeError(`Cannot assign to read only property '${String(name)}' of a frozen built-in`);
        }
        defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
      },
      enumerable: descriptor.enumerable,
      configurable: false,
    });
  };
  const OVERRIDABLE = [
    [Object.prototype, ["constructor", "toString", "toLocaleString", "valueOf", "hasOwnProperty",
      "isPrototypeOf", "propertyIsEnumerable"]],
    [Function.prototype, ["constructor", "toString", "apply", "call", "bind"]],
    [Array.prototype, ["constructor", "toString", "push", "join"]],
    [Promise.prototype, ["constructor", "then", "catch", "finally"]],
    [Error.prototype, ["constructor", "name", "message", "toString"]],
  ];
  for (const ErrorType of [EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
    AggregateError, globalThis.SuppressedError]) {
    if (typeof ErrorType === "function") OVERRIDABLE.push([ErrorType.prototype, ["constructor", "name", "message"]]);
  }
  for (const [proto, names] of OVERRIDABLE) {
    for (const name of names) allowOverride(proto, name);
  }

  // Intrinsics that no global names but syntax or built-in methods hand out: the prototypes of
  // async and generator functions, the iterator prototypes, %TypedArray%, Intl's segment objects.
  const emptyIterator = { next: () => ({ done: true, value: undefined }) };
  const hiddenIntrinsicRoots = [
    async function asyncSample() {},
    function* generatorSample() {},
    async function* asyncGeneratorSample() {},
    (function* generatorInstance() {})(),
    (async function* asyncGeneratorInstance() {})(),
    [][Symbol.iterator](),
    new Map()[Symbol.iterator](),
    new Set()[Symbol.iterator](),
    ""[Symbol.iterator](),
    /x/[Symbol.matchAll](""),
    (async () => {})(),
  ];
  if (typeof Iterator === "function") {
    hiddenIntrinsicRoots.push([].values().map((value) => value), Iterator.from(emptyIterator));
  }
  if (typeof Intl === "object" && typeof Intl.Segmenter === "function") {
    const segments = new Intl.Segmenter().segment("a");
    hiddenIntrinsicRoots.push(segments, segments[Symbol.iterator]());
  }

  // Walks prototypes, property values and accessor functions, freezing everything it meets.
  const hardenAll = (roots) => {
    const seen = new Set();
    const pending = [...roots];
    while (pending.length > 0) {
      const item = pending.pop();
      if (item === null || (typeof item !== "object" && typeof item !== "function") || seen.has(item)) continue;
      seen.add(item);
      freeze(item);
      pending.push(getPrototypeOf(item));
      for (const key of ownKeys(item)) {
        const descriptor = getOwnPropertyDescriptor(item, key);
        if ("value" in descriptor) {
          pending.push(descriptor.value);
        } else {
          pending.push(descriptor.get, descriptor.set);
        }
      }
    }
  };
  hardenAll([globalThis, ...hiddenIntrinsicRoots]);
})();
