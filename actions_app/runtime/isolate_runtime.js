// The in-isolate half of the action runtime: the console, the module loader and one execution
// at a time. Evaluated once in every fresh V8 context, right before isolate_lockdown.js and
// before any action code, so the built-ins it captures cannot have been tampered with.
//
// RUNTIME_BINDING is replaced with a per-context random name. A script-scope `const` is not a
// property of the global object, so action code cannot enumerate it, and no function the action
// can reach mentions the name (their source refers to closure variables only).
const RUNTIME_BINDING = (() => {
  "use strict";

  const {
    create: objectCreate,
    defineProperty,
    freeze,
    getPrototypeOf,
    keys: objectKeys,
    prototype: objectPrototype,
  } = Object;
  const { apply: reflectApply, ownKeys } = Reflect;
  const jsonStringify = JSON.stringify;
  const jsonParse = JSON.parse;
  const isArray = Array.isArray;
  const isFiniteNumber = Number.isFinite;
  const promiseResolve = (value) => reflectApply(Promise.resolve, Promise, [value]);
  const promiseThen = Promise.prototype.then;
  const symbolToString = (symbol) => reflectApply(Symbol.prototype.toString, symbol, []);
  const ErrorConstructor = Error;
  const SetConstructor = Set;

  // Budgets, in UTF-16 code units. The worker trims to exact UTF-8 bytes afterwards; code units
  // never outnumber bytes, so these only ever stop collecting text that would be cut anyway.
  const LOG_BUDGET = 8192;
  const RESULT_BUDGET = 65536;
  const MAX_RESULT_DEPTH = 64;
  // Thrown text (an error's name and message, a rejected value) is cut here, inside the isolate:
  // an action can throw a message of hundreds of MiB, which would otherwise be copied out whole
  // (the worker's reply frame has a 32 MiB limit) and become a run's block reason. The worker
  // trims the whole message further (runtime.protocol.clip_error_message).
  const ERROR_NAME_BUDGET = 200;
  const ERROR_TEXT_BUDGET = 2048;
  // The stack's frames come after the message, which may be huge: only its end is searched.
  const STACK_TAIL_BUDGET = 16384;

  const clip = (text, limit) => (text.length > limit ? `${text.slice(0, limit)}…` : text);

  // ---- The console: output is captured per execution ----------------------------------------

  let logEntries = [];
  let logUnits = 0;
  let logsTruncated = false;

  const describeFunction = (fn) => {
    const name = typeof fn.name === "string" && fn.name ? fn.name : "(anonymous)";
    return `[Function: ${name}]`;
  };

  const describeError = (error) => {
    const name = clip(String(error.name), ERROR_NAME_BUDGET);
    const message = clip(String(error.message), ERROR_TEXT_BUDGET);
    return message ? `${name}: ${message}` : name;
  };

  // Like a console: strings as they are, errors as "Name: message", other values as JSON when
  // that works and String() otherwise. Hostile values (throwing getters, revoked proxies) print
  // as a placeholder instead of escaping from console.log.
  const formatValue = (value) => {
    try {
      switch (typeof value) {
        case "string":
          return value;
        case "undefined":
          return "undefined";
        case "function":
          return describeFunction(value);
        case "symbol":
          return symbolToString(value);
        case "bigint":
          return `${value}n`;
        case "object":
          if (value === null) return "null";
          if (value instanceof ErrorConstructor) return describeError(value);
          try {
            const text = jsonStringify(value);
            if (typeof text === "string") return text;
          } catch {
            // Cycles and BigInts fall through to String().
          }
          return String(value);
        default:
          return String(value);
      }
    } catch {
      return "[unprintable value]";
    }
  };

  const record = (level, args) => {
    if (logsTruncated) return;
    let text = "";
    for (let index = 0; index < args.length && text.length <= LOG_BUDGET; index++) {
      text += (index === 0 ? "" : " ") + formatValue(args[index]);
    }
    // Each entry costs its text plus one unit, as if the entries were joined by newlines; that
    // also bounds a flood of empty messages.
    const room = LOG_BUDGET - logUnits - 1;
    if (text.length > room) {
      logsTruncated = true;
      if (room <= 0) return;
      text = text.slice(0, room);
    }
    logUnits += text.length + 1;
    logEntries[logEntries.length] = { level, message: text };
  };

  const makeLogger = (level) =>
    function log(...args) {
      record(level, args);
    };
  const capturingConsole = {
    log: makeLogger("log"),
    info: makeLogger("info"),
    warn: makeLogger("warn"),
    error: makeLogger("error"),
    debug: makeLogger("log"),
    trace: makeLogger("log"),
    dir: makeLogger("log"),
  };
  // Replaces V8's own console; isolate_lockdown.js then freezes it with everything else.
  defineProperty(globalThis, "console", { value: capturingConsole, writable: true, configurable: true });

  // ---- Allocation budgets, per execution ------------------------------------------------------

  // V8's heap limit is checked after a garbage collection only and does not count ArrayBuffer
  // backing stores or ICU's memory at all, and V8 cannot recover once its heap is exhausted: the
  // whole worker aborts. So the built-ins that allocate such memory in one call are metered here
  // (isolate_lockdown.js wraps them, before it freezes them) and refuse past a budget. A refusal
  // is a RangeError, and it sticks: the execution ends in `memory` even if the action catches it.
  const INTL_OBJECT_BUDGET = 1000;
  const DEFAULT_BYTE_BUDGET = 64 * 1024 * 1024;
  // ArrayBuffer bytes: the execution's memory limit, in total. String length: no single string
  // that could take more than the memory limit (two bytes a character), 32 Mi at 64 MiB.
  let byteBudget = DEFAULT_BYTE_BUDGET;
  let stringLengthBudget = DEFAULT_BYTE_BUDGET / 2;
  let bytesAllocated = 0;
  // Bytes already charged by a method (a typed-array map, say) for the copy it is about to make
  // through a species constructor, which would otherwise charge them again.
  let bytesPrepaid = 0;
  let intlObjects = 0;
  let refusal = null;

  const refuse = (message) => {
    if (refusal === null) refusal = message;
    throw new RangeError(message);
  };
  const mebibytes = (bytes) => `${Math.round(bytes / (1024 * 1024))} MiB`;

  const allocationMeter = freeze({
    // Refused once refused: a caught refusal must not let the next allocation through.
    check() {
      if (refusal !== null) throw new RangeError(refusal);
    },
    chargeBytes(bytes) {
      if (refusal !== null) throw new RangeError(refusal);
      if (!(bytes > 0)) return;
      if (bytesPrepaid > 0) {
        const used = bytes < bytesPrepaid ? bytes : bytesPrepaid;
        bytesPrepaid -= used;
        bytes -= used;
      }
      if (bytesAllocated + bytes > byteBudget) {
        refuse(`Execution exceeded its ${mebibytes(byteBudget)} memory limit (ArrayBuffer memory).`);
      }
      bytesAllocated += bytes;
    },
    prepay(bytes) {
      allocationMeter.chargeBytes(bytes);
      bytesPrepaid = bytes;
    },
    endPrepaid() {
      bytesPrepaid = 0;
    },
    chargeIntlObject() {
      if (refusal !== null) throw new RangeError(refusal);
      if (++intlObjects > INTL_OBJECT_BUDGET) {
        refuse(`Execution exceeded its memory limit (more than ${INTL_OBJECT_BUDGET} Intl objects).`);
      }
    },
    // Arrays: a few built-ins fill or copy a whole array in one loop that V8's termination does
    // not stop (new Array(1.3e8).fill(0) held its thread for seconds after the limit, and the
    // worker was replaced). No such call may cover more elements than four bytes each allow.
    checkArrayLength(length) {
      if (refusal !== null) throw new RangeError(refusal);
      if (length > byteBudget / 4) {
        refuse(`Execution exceeded its ${mebibytes(byteBudget)} memory limit (an array of ${length} elements).`);
      }
    },
    checkStringLength(length) {
      if (refusal !== null) throw new RangeError(refusal);
      if (length > stringLengthBudget) {
        refuse(`Execution exceeded its ${mebibytes(byteBudget)} memory limit (a string of ${length} characters).`);
      }
    },
  });

  // ---- One execution at a time ---------------------------------------------------------------

  let executeFunction = null;
  let outcome = null;

  const failure = (code, message) => ({ code, message });

  const firstActionFrame = (error) => {
    try {
      const stack = String(error.stack);
      const tail = stack.length > STACK_TAIL_BUDGET ? stack.slice(-STACK_TAIL_BUDGET) : stack;
      const match = /action\.js:(\d+):(\d+)/.exec(tail);
      return match ? ` (line ${match[1]}, column ${match[2]})` : "";
    } catch {
      return "";
    }
  };

  // Running out of ArrayBuffer memory or string length surfaces as a RangeError, not as V8's
  // memory limit; report both as what they are.
  const MEMORY_MESSAGES = new SetConstructor(["Array buffer allocation failed", "Invalid string length",
    "Invalid typed array length"]);

  const describeThrown = (thrown, prefix) => {
    if (refusal !== null) return failure("memory", refusal);
    try {
      if (thrown instanceof ErrorConstructor) {
        const message = clip(String(thrown.message), ERROR_TEXT_BUDGET);
        if (thrown instanceof RangeError && MEMORY_MESSAGES.has(message)) {
          return failure("memory", `Execution ran out of memory (RangeError: ${message}).`);
        }
        return failure("exception", `${prefix}${describeError(thrown)}${firstActionFrame(thrown)}`);
      }
      return failure("exception", `${prefix}non-Error value: ${clip(formatValue(thrown), ERROR_TEXT_BUDGET)}`);
    } catch {
      return failure("exception", `${prefix}unprintable value`);
    }
  };

  const SERIALIZE_ERROR = Symbol("serialize error");
  const serializeFailure = (code, message) => {
    const error = new ErrorConstructor(message);
    error[SERIALIZE_ERROR] = failure(code, message);
    return error;
  };

  // Copies the returned value into plain data, refusing anything JSON would silently change or
  // drop. The copy, not the returned object, is stringified, so getters and proxies are read
  // exactly once and cannot answer differently the second time.
  const toPlainData = (root) => {
    let units = 0;
    const onPath = new SetConstructor();
    const charge = (amount) => {
      units += amount;
      if (units > RESULT_BUDGET) {
        throw serializeFailure("result_too_large", "The result is larger than 64 KiB of JSON.");
      }
    };
    const copy = (value, path, depth) => {
      switch (typeof value) {
        case "string":
          charge(value.length + 2);
          return value;
        case "boolean":
          charge(4);
          return value;
        case "number":
          if (!isFiniteNumber(value)) {
            throw serializeFailure("invalid_result", `${path} is ${value}, which JSON cannot represent.`);
          }
          charge(1);
          return value;
        case "undefined":
          if (depth === 0) {
            throw serializeFailure("invalid_result", "execute() returned undefined; it must return an ActionResult.");
          }
          throw serializeFailure("invalid_result", `${path} is undefined; leave the key out or use null.`);
        case "function":
          throw serializeFailure("invalid_result", `${path} is a function; results must be JSON data.`);
        case "symbol":
          throw serializeFailure("invalid_result", `${path} is a Symbol; results must be JSON data.`);
        case "bigint":
          throw serializeFailure("invalid_result", `${path} is a BigInt; results must be JSON data.`);
        default:
          break;
      }
      if (value === null) {
        charge(4);
        return null;
      }
      if (onPath.has(value)) {
        throw serializeFailure("invalid_result", `${path} refers back to itself (a cyclic object).`);
      }
      if (depth >= MAX_RESULT_DEPTH) {
        throw serializeFailure("invalid_result", `${path} is nested more than ${MAX_RESULT_DEPTH} levels deep.`);
      }
      onPath.add(value);
      let plain;
      if (isArray(value)) {
        plain = [];
        const length = value.length;
        charge(2);
        for (let index = 0; index < length; index++) {
          charge(1);
          plain[index] = copy(value[index], `${path}[${index}]`, depth + 1);
        }
      } else {
        const proto = getPrototypeOf(value);
        if (proto !== objectPrototype && proto !== null) {
          throw serializeFailure("invalid_result", `${path} is not a plain object; results must be JSON data.`);
        }
        const symbolKeys = ownKeys(value).filter((key) => typeof key === "symbol");
        if (symbolKeys.length > 0) {
          throw serializeFailure("invalid_result", `${path} has a Symbol key; results must be JSON data.`);
        }
        plain = objectCreate(null);
        charge(2);
        for (const key of objectKeys(value)) {
          charge(key.length + 4);
          plain[key] = copy(value[key], `${path}.${key}`, depth + 1);
        }
      }
      onPath.delete(value);
      return plain;
    };
    const json = jsonStringify(copy(root, "result", 0));
    if (json.length > RESULT_BUDGET) {
      throw serializeFailure("result_too_large", "The result is larger than 64 KiB of JSON.");
    }
    return json;
  };

  const settleWithValue = (value) => {
    if (outcome !== null) return;
    if (refusal !== null) {
      outcome = failure("memory", refusal);
      return;
    }
    try {
      outcome = { resultJson: toPlainData(value) };
    } catch (error) {
      outcome = error instanceof ErrorConstructor && error[SERIALIZE_ERROR]
        ? error[SERIALIZE_ERROR]
        : describeThrown(error, "Reading the result threw ");
    }
  };

  const settleWithError = (thrown) => {
    if (outcome === null) outcome = describeThrown(thrown, "Uncaught ");
  };

  // Evaluates the action module. `factory` is the compiled CommonJS wrapped in a function that
  // receives `exports` and `module`, as Node would pass them; there is no `require`.
  const load = (factory) => {
    const moduleRecord = { exports: {} };
    try {
      reflectApply(factory, moduleRecord.exports, [moduleRecord.exports, moduleRecord]);
    } catch (thrown) {
      outcome = describeThrown(thrown, "Module initialisation threw ");
      return poll();
    }
    let candidate;
    try {
      const exported = moduleRecord.exports;
      candidate = exported === null || exported === undefined ? undefined : exported.execute;
    } catch (thrown) {
      outcome = describeThrown(thrown, "Reading exports.execute threw ");
      return poll();
    }
    if (typeof candidate !== "function") {
      const found = candidate === undefined ? "undefined" : candidate === null ? "null" : `a ${typeof candidate}`;
      outcome = failure("compile", `The module must export an execute function (exports.execute is ${found}).`);
      return poll();
    }
    executeFunction = candidate;
    return "";
  };

  const reset = (memoryLimitBytes) => {
    byteBudget = memoryLimitBytes > 0 ? memoryLimitBytes : DEFAULT_BYTE_BUDGET;
    stringLengthBudget = byteBudget / 2;
    bytesAllocated = 0;
    bytesPrepaid = 0;
    intlObjects = 0;
    refusal = null;
    outcome = null;
    logEntries = [];
    logUnits = 0;
    logsTruncated = false;
  };

  // Starts one execution with a fresh copy of its input. The outcome lands in `outcome` from a
  // promise reaction; the worker reads it with poll().
  const begin = (inputJson) => {
    let returned;
    try {
      returned = reflectApply(executeFunction, undefined, [jsonParse(inputJson)]);
    } catch (thrown) {
      settleWithError(thrown);
      return;
    }
    reflectApply(promiseThen, promiseResolve(returned), [settleWithValue, settleWithError]);
  };

  const poll = () => {
    if (outcome === null) return "";
    return jsonStringify({ ...outcome, logs: logEntries, logsTruncated });
  };

  // The logs so far, for an execution that was stopped before it settled.
  const logSnapshot = () => jsonStringify({ logs: logEntries, logsTruncated });

  return freeze({ load, reset, begin, poll, logSnapshot, allocationMeter });
})();
