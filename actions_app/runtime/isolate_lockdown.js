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

  // ---- 4. Allocation budgets ------------------------------------------------------------------

  // Every built-in that allocates memory V8's heap limit does not see (ArrayBuffer backing stores,
  // ICU formatters) or a string of any size in one call is replaced by a wrapper that charges the
  // execution's budgets first (isolate_runtime.js keeps them, reset per execution). The wrappers
  // take the originals' places everywhere (global, `constructor`, prototype chain), so instanceof,
  // subclassing and Symbol.species go through them, and they are frozen with everything else below.
  // String concatenation (`+`, template literals) cannot be wrapped: the worker's data limit and the
  // heap check after the execution are what stop those.
  const meter = RUNTIME_BINDING.allocationMeter;
  const { construct, getOwnPropertyDescriptor: reflectDescriptor, setPrototypeOf } = Reflect;
  const { trunc: mathTrunc } = Math;
  const symbolIterator = Symbol.iterator;
  const toText = (value) => `${value}`;
  // ToIntegerOrInfinity for a value converted once; the converted number is what the original gets.
  const toInteger = (value) => {
    const number = +value;
    return number !== number ? 0 : mathTrunc(number);
  };
  const isObject = (value) => (typeof value === "object" && value !== null) || typeof value === "function";

  // Replaces `owner[name]` (a method) by `makeWrapper(original)`, keeping name, length and attributes.
  const replaceMethod = (owner, name, makeWrapper) => {
    const descriptor = getOwnPropertyDescriptor(owner, name);
    if (!descriptor || typeof descriptor.value !== "function") return;
    const original = descriptor.value;
    const wrapper = makeWrapper(original);
    defineProperty(wrapper, "name", { value: original.name });
    defineProperty(wrapper, "length", { value: original.length });
    defineProperty(owner, name, { ...descriptor, value: wrapper });
  };
  // A method that charges `before(thisValue, args)` (which may return converted arguments).
  const meteredMethod = (owner, name, before) =>
    replaceMethod(owner, name, (original) => ({
      [name](...args) {
        const prepared = before(this, args);
        return reflectApply(original, this, prepared === undefined ? args : prepared);
      },
    })[name]);
  // A method whose string result is refused past the budget, for results no cheaper rule bounds.
  const checkedStringMethod = (owner, name) =>
    replaceMethod(owner, name, (original) => ({
      [name](...args) {
        meter.check();
        const result = reflectApply(original, this, args);
        if (typeof result === "string") meter.checkStringLength(result.length);
        return result;
      },
    })[name]);

  // Replaces the global constructor `owner[name]` with a function that charges `before(args)`
  // (which may return converted arguments, or a function that builds the object itself) and then
  // constructs the original with the caller's new.target.
  const replaceConstructor = (owner, name, before, beforeCall = undefined) => {
    const Original = owner[name];
    if (typeof Original !== "function") return undefined;
    const Wrapper = function (...args) {
      if (new.target === undefined) {
        // Intl.DateTimeFormat() and friends build an object without `new`; the rest throw.
        if (beforeCall !== undefined) beforeCall(args);
        return reflectApply(Original, this, args);
      }
      const prepared = before(args);
      const target = new.target === Wrapper ? Original : new.target;
      if (typeof prepared === "function") return prepared(target);
      return construct(Original, prepared === undefined ? args : prepared, target);
    };
    for (const key of ownKeys(Original)) {
      if (key === "prototype") continue;
      defineProperty(Wrapper, key, reflectDescriptor(Original, key));
    }
    defineProperty(Wrapper, "prototype", { value: Original.prototype, writable: false, enumerable: false, configurable: false });
    defineProperty(Original.prototype, "constructor", { ...getOwnPropertyDescriptor(Original.prototype, "constructor"), value: Wrapper });
    setPrototypeOf(Wrapper, getPrototypeOf(Original));
    defineProperty(owner, name, { ...getOwnPropertyDescriptor(owner, name), value: Wrapper });
    return Wrapper;
  };

  // ArrayBuffer memory: at most the execution's memory limit, in total.
  const arrayBufferProto = ArrayBuffer.prototype;
  const byteLengthOf = getOwnPropertyDescriptor(arrayBufferProto, "byteLength").get;
  const isArrayBuffer = (value) => {
    try {
      reflectApply(byteLengthOf, value, []);
      return true;
    } catch {
      return false;
    }
  };
  // The [start, end) a slice copies, from arguments converted once (they are passed on converted).
  const sliceRange = (length, args) => {
    const start = toInteger(args[0]);
    const end = args[1] === undefined ? length : toInteger(args[1]);
    const first = start < 0 ? Math.max(length + start, 0) : Math.min(start, length);
    const final = end < 0 ? Math.max(length + end, 0) : Math.min(end, length);
    return [first, final];
  };
  replaceConstructor(globalThis, "ArrayBuffer", (args) => {
    const length = toInteger(args[0]);
    meter.chargeBytes(length);
    const options = args[1];
    if (!isObject(options)) return [length];
    const maxByteLength = options.maxByteLength;
    return maxByteLength === undefined ? [length] : [length, { maxByteLength: toInteger(maxByteLength) }];
  });
  meteredMethod(arrayBufferProto, "resize", (buffer, args) => {
    const length = toInteger(args[0]);
    meter.chargeBytes(length - reflectApply(byteLengthOf, buffer, []));
    return [length];
  });
  meteredMethod(arrayBufferProto, "slice", (buffer, args) => {
    const range = sliceRange(reflectApply(byteLengthOf, buffer, []), args);
    meter.prepay(range[1] - range[0]);
    return range;
  });
  for (const name of ["transfer", "transferToFixedLength"]) {
    meteredMethod(arrayBufferProto, name, (buffer, args) => {
      if (args[0] === undefined) {
        meter.chargeBytes(reflectApply(byteLengthOf, buffer, []));
        return undefined;
      }
      const length = toInteger(args[0]);
      meter.chargeBytes(length);
      return [length];
    });
  }

  const TypedArray = getPrototypeOf(Int8Array);
  const typedArrayProto = TypedArray.prototype;
  const typedArrayTag = getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag).get;
  const typedArrayLength = getOwnPropertyDescriptor(typedArrayProto, "length").get;
  const TYPED_ARRAY_NAMES = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"];
  const bytesPerElement = new Map();
  for (const name of TYPED_ARRAY_NAMES) {
    if (typeof globalThis[name] === "function") bytesPerElement.set(name, globalThis[name].BYTES_PER_ELEMENT);
  }
  // The bytes a typed array's copy of `count` elements takes (it throws for a non-typed-array).
  const elementBytes = (typedArray) => {
    const size = bytesPerElement.get(reflectApply(typedArrayTag, typedArray, []));
    if (size === undefined) throw new TypeError("this is not a typed array");
    return size;
  };
  const collectIterable = (iterable, method, size) => {
    const iterator = reflectApply(method, iterable, []);
    const next = iterator.next;
    const values = [];
    for (;;) {
      const step = reflectApply(next, iterator, []);
      if (!isObject(step)) throw new TypeError(`Iterator result ${toText(step)} is not an object`);
      if (step.done) return values;
      values[values.length] = step.value;
      if ((values.length & 0xffff) === 0) meter.chargeBytes(0x10000 * size);
    }
  };
  for (const name of bytesPerElement.keys()) {
    const size = bytesPerElement.get(name);
    const Original = globalThis[name];
    replaceConstructor(globalThis, name, (args) => {
      const source = args[0];
      if (!isObject(source)) {
        if (typeof source === "bigint" || typeof source === "symbol") return undefined; // the original throws
        const length = toInteger(source);
        meter.chargeBytes(length * size);
        return [length];
      }
      if (isArrayBuffer(source)) return undefined; // a view: nothing allocated
      if (reflectApply(typedArrayTag, source, []) !== undefined) {
        meter.chargeBytes(reflectApply(typedArrayLength, source, []) * size);
        return undefined;
      }
      const method = source[symbolIterator];
      if (method !== undefined && method !== null) {
        const values = collectIterable(source, method, size);
        meter.chargeBytes((values.length & 0xffff) * size);
        return [values];
      }
      // Array-like: its length is read once, so it cannot grow after it was charged.
      const length = toInteger(source.length);
      meter.chargeBytes(length * size);
      return (target) => {
        const array = construct(Original, [length], target);
        for (let index = 0; index < length; index++) array[index] = source[index];
        return array;
      };
    });
  }
  meteredMethod(typedArrayProto, "slice", (array, args) => {
    const range = sliceRange(reflectApply(typedArrayLength, array, []), args);
    meter.prepay((range[1] - range[0]) * elementBytes(array));
    return range;
  });
  for (const name of ["map", "filter"]) {
    replaceMethod(typedArrayProto, name, (original) => ({
      [name](...args) {
        meter.prepay(reflectApply(typedArrayLength, this, []) * elementBytes(this));
        try {
          return reflectApply(original, this, args);
        } finally {
          meter.endPrepaid();
        }
      },
    })[name]);
  }
  for (const name of ["toReversed", "toSorted", "with"]) {
    meteredMethod(typedArrayProto, name, (array) => {
      meter.chargeBytes(reflectApply(typedArrayLength, array, []) * elementBytes(array));
    });
  }
  for (const name of ["fromBase64", "fromHex"]) {
    meteredMethod(globalThis.Uint8Array, name, (_, args) => {
      if (typeof args[0] === "string") meter.chargeBytes(args[0].length);
    });
  }

  // Arrays: the built-ins that loop over a whole (possibly sparse) array without heeding V8's
  // termination. A length read once is the length the built-in gets: an array's own length cannot
  // change under it, and an array-like is seen through a view that keeps the length checked.
  const arrayProto = Array.prototype;
  const isArray = Array.isArray;
  const lengthHandler = (length) => ({
    get: (target, key, receiver) => (key === "length" ? length : reflectApply(Reflect.get, undefined, [target, key, receiver])),
  });
  const checkedArrayLike = (value) => {
    const length = toInteger(value.length);
    meter.checkArrayLength(length);
    return isArray(value) ? value : new Proxy(value, lengthHandler(length));
  };
  meteredMethod(arrayProto, "fill", (array, args) => {
    if (array === null || array === undefined) return undefined; // the original throws
    const length = toInteger(Object(array).length);
    const [first, final] = sliceRange(length, [args[1], args[2]]);
    meter.checkArrayLength(final - first);
    return [args[0], first, final];
  });
  for (const name of ["toReversed", "toSorted", "toSpliced", "with"]) {
    meteredMethod(arrayProto, name, (array) => {
      if (array !== null && array !== undefined) meter.checkArrayLength(toInteger(Object(array).length));
    });
  }
  meteredMethod(Array, "from", (_, args) => {
    const source = args[0];
    if (!isObject(source) || (source[symbolIterator] !== undefined && source[symbolIterator] !== null)) return undefined;
    return [checkedArrayLike(source), ...args.slice(1)];
  });

  // Intl: every formatter is an ICU object outside the V8 heap, and some constructors do not heed
  // V8's termination; a budget of objects per execution bounds both.
  const chargeIntl = () => {
    meter.chargeIntlObject();
  };
  if (typeof Intl === "object") {
    for (const name of ownKeys(Intl)) {
      if (typeof name === "string" && typeof Intl[name] === "function" && /^[A-Z]/.test(name)) {
        replaceConstructor(Intl, name, chargeIntl, chargeIntl);
      }
    }
    if (typeof Intl.Segmenter === "function") meteredMethod(Intl.Segmenter.prototype, "segment", chargeIntl);
    if (typeof Intl.Locale === "function") {
      meteredMethod(Intl.Locale.prototype, "maximize", chargeIntl);
      meteredMethod(Intl.Locale.prototype, "minimize", chargeIntl);
    }
  }
  const LOCALE_METHODS = [
    [Date.prototype, ["toLocaleString", "toLocaleDateString", "toLocaleTimeString"]],
    [Number.prototype, ["toLocaleString"]],
    [BigInt.prototype, ["toLocaleString"]],
    [String.prototype, ["localeCompare", "toLocaleUpperCase", "toLocaleLowerCase"]],
  ];
  if (typeof Temporal === "object") {
    for (const name of ownKeys(Temporal)) {
      const proto = typeof Temporal[name] === "function" ? Temporal[name].prototype : undefined;
      if (proto && getOwnPropertyDescriptor(proto, "toLocaleString")) LOCALE_METHODS.push([proto, ["toLocaleString"]]);
    }
  }
  for (const [proto, names] of LOCALE_METHODS) {
    for (const name of names) meteredMethod(proto, name, chargeIntl);
  }

  // Strings: no single call builds one longer than the budget. Where the result's length is known
  // beforehand it is refused before it is built; otherwise it is checked after.
  const stringProto = String.prototype;
  const thisText = (value, name) => {
    if (value === null || value === undefined) throw new TypeError(`String.prototype.${name} called on null or undefined`);
    return toText(value);
  };
  replaceMethod(stringProto, "repeat", (original) => ({
    repeat(count) {
      const text = thisText(this, "repeat");
      const times = toInteger(count);
      if (text.length > 0 && times > 0 && times !== Infinity) meter.checkStringLength(text.length * times);
      return reflectApply(original, text, [times]);
    },
  }).repeat);
  for (const name of ["padStart", "padEnd"]) {
    replaceMethod(stringProto, name, (original) => ({
      [name](maxLength, fillString) {
        const text = thisText(this, name);
        const length = toInteger(maxLength);
        const filler = fillString === undefined ? " " : toText(fillString);
        if (length > text.length && filler !== "") meter.checkStringLength(length);
        return reflectApply(original, text, [length, filler]);
      },
    })[name]);
  }
  replaceMethod(stringProto, "concat", (original) => ({
    concat(...parts) {
      const text = thisText(this, "concat");
      let length = text.length;
      for (let index = 0; index < parts.length; index++) {
        parts[index] = toText(parts[index]);
        length += parts[index].length;
      }
      meter.checkStringLength(length);
      return reflectApply(original, text, parts);
    },
  }).concat);
  for (const name of ["replace", "replaceAll", "normalize", "toUpperCase", "toLowerCase", "toWellFormed"]) {
    checkedStringMethod(stringProto, name);
  }
  for (const name of ["toLocaleString", "toString", "join"]) checkedStringMethod(typedArrayProto, name);
  checkedStringMethod(Array.prototype, "toLocaleString");
  checkedStringMethod(RegExp.prototype, Symbol.replace);
  checkedStringMethod(String, "raw");
  checkedStringMethod(JSON, "stringify");
  for (const name of ["escape", "encodeURI", "encodeURIComponent"]) checkedStringMethod(globalThis, name);
  for (const name of ["toBase64", "toHex"]) {
    if (typeof Uint8Array.prototype[name] === "function") checkedStringMethod(Uint8Array.prototype, name);
  }
  // Array.prototype.join as specified, with the length added up before the result is built (a
  // join of many long strings is a single allocation of up to 1 GiB). An array met again while it
  // is being joined (a cycle) joins as "", as V8's does.
  const arrayJoin = Array.prototype.join;
  const beingJoined = new Set();
  replaceMethod(Array.prototype, "join", () => ({
    join(separator) {
      meter.check();
      if (this === null || this === undefined) throw new TypeError("Array.prototype.join called on null or undefined");
      const array = Object(this);
      const length = toInteger(array.length);
      const between = separator === undefined ? "," : toText(separator);
      if (beingJoined.has(array)) return "";
      beingJoined.add(array);
      try {
        const parts = [];
        let total = length > 0 ? (length - 1) * between.length : 0;
        meter.checkStringLength(total);
        for (let index = 0; index < length; index++) {
          const element = array[index];
          const part = element === undefined || element === null ? "" : toText(element);
          total += part.length;
          meter.checkStringLength(total);
          parts[index] = part;
        }
        return reflectApply(arrayJoin, parts, [between]);
      } finally {
        beingJoined.delete(array);
      }
    },
  }).join);

  // ---- 5. Freeze the built-ins ----------------------------------------------------------------

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
