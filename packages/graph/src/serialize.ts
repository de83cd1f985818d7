// Serialization of a Graph to ONNX ModelProto bytes (IR version 8, opset 18) with onnx-buf, and
// optional external-data weights (TensorProto.external_data location/offset/length) for models whose
// initializers would push the protobuf past its 2 GiB limit. Output is deterministic: node, input,
// output and initializer order follow construction order and attributes are sorted by name.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
} from 'onnx-buf';
import type { AttributeProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import { onnxTypeCode } from './dtype.js';
import { type ConstTensor, type Graph, OPSET, type Tensor } from './graph.js';
import { type AttrValue, attrKinds, customOpDomains, graphLevelOps } from './ops.js';

/** Options of `serialize`. */
export interface SerializeOptions {
  /** Store initializers of at least `thresholdBytes` in a separate file named by `path`'s basename. */
  externalData?: { path: string; thresholdBytes: number };
  /** ModelProto.producer_name (default '@latent-sft/graph'). */
  producer?: string;
}

/** One initializer's bytes placed at `offset` in the external weights file. */
export interface ExternalChunk {
  name: string;
  offset: number;
  bytes: Uint8Array;
}

/** Model bytes plus the chunks of the external weights file (empty without `externalData`). */
export interface SerializedModel {
  model: Uint8Array;
  external: ExternalChunk[];
  /** Total size of the weights file in bytes. */
  externalBytes: number;
}

/** Offsets in the weights file are aligned to this many bytes (ORT may mmap the file). */
const EXTERNAL_ALIGN = 64;

function rawBytes(t: ConstTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function tensorProto(name: string, t: ConstTensor): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dims: t.dims.map((d) => BigInt(d)),
    dataType: onnxTypeCode[t.dtype],
    rawData: new Uint8Array(rawBytes(t)),
  });
}

function valueInfo(t: Tensor): ValueInfoProto {
  const dims = t.shape.map((d) =>
    create(TensorShapeProto_DimensionSchema, {
      value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
    }),
  );
  return create(ValueInfoProtoSchema, {
    name: t.name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, { elemType: onnxTypeCode[t.dtype], shape: create(TensorShapeProtoSchema, { dim: dims }) }),
      },
    }),
  });
}

function attribute(name: string, v: AttrValue): AttributeProto {
  const kind = (attrKinds as Record<string, string | undefined>)[name];
  const T = AttributeProto_AttributeType;
  switch (kind) {
    case 'int':
      return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(v as number) });
    case 'float':
      return create(AttributeProtoSchema, { name, type: T.FLOAT, f: v as number });
    case 'ints':
      return create(AttributeProtoSchema, { name, type: T.INTS, ints: (v as number[]).map((x) => BigInt(x)) });
    case 'string':
      return create(AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(v as string) });
    case 'dtype':
      return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(onnxTypeCode[v as keyof typeof onnxTypeCode]) });
    case 'tensor':
      return create(AttributeProtoSchema, { name, type: T.TENSOR, t: tensorProto('', v as ConstTensor) });
    default:
      throw new Error(`attribute '${name}' has no kind in attrKinds`);
  }
}

/** Serializes `graph` to ModelProto bytes (same graph → same bytes). */
export function serialize(graph: Graph, opts: SerializeOptions = {}): SerializedModel {
  if (graph.outputs.length === 0) throw new Error(`graph '${graph.name}' has no outputs`);
  const unlowered = graph.nodes.find((n) => graphLevelOps.has(n.op));
  if (unlowered !== undefined)
    throw new Error(`graph '${graph.name}': ${unlowered.op} node '${unlowered.name}' has no kernel; lower it first (lowerLinearLogProb)`);
  const external: ExternalChunk[] = [];
  let offset = 0;
  const ext = opts.externalData;
  const initializer: TensorProto[] = [];
  for (const [name, t] of graph.initializers) {
    if (ext !== undefined && t.data.byteLength >= ext.thresholdBytes) {
      offset = Math.ceil(offset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
      const bytes = rawBytes(t);
      external.push({ name, offset, bytes });
      initializer.push(
        create(TensorProtoSchema, {
          name,
          dims: t.dims.map((d) => BigInt(d)),
          dataType: onnxTypeCode[t.dtype],
          dataLocation: TensorProto_DataLocation.EXTERNAL,
          externalData: [
            create(StringStringEntryProtoSchema, { key: 'location', value: basename(ext.path) }),
            create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
            create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.byteLength) }),
          ],
        }),
      );
      offset += bytes.byteLength;
    } else initializer.push(tensorProto(name, t));
  }
  const initNames = new Set(graph.initializers.keys());
  const graphProto = create(GraphProtoSchema, {
    name: graph.name,
    node: graph.nodes.map((n) =>
      create(NodeProtoSchema, {
        name: n.name,
        opType: n.op,
        domain: (customOpDomains as Record<string, string | undefined>)[n.op] ?? '',
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.keys(n.attrs)
          .sort()
          .map((k) => attribute(k, n.attrs[k] as AttrValue)),
      }),
    ),
    initializer,
    input: graph.inputs.filter((t) => !initNames.has(t.name)).map(valueInfo),
    output: graph.outputs.map(valueInfo),
  });
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: opts.producer ?? '@latent-sft/graph',
    producerVersion: '0.1.0',
    opsetImport: [
      create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(OPSET) }),
      ...[...new Set(graph.nodes.map((n) => (customOpDomains as Record<string, string | undefined>)[n.op]).filter((d): d is string => d !== undefined))]
        .sort()
        .map((domain) => create(OperatorSetIdProtoSchema, { domain, version: 1n })),
    ],
    graph: graphProto,
  });
  return { model: toBinary(ModelProtoSchema, model), external, externalBytes: offset };
}

function writeAtomic(path: string, chunks: ReadonlyArray<{ offset: number; bytes: Uint8Array }>): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) {
      let done = 0;
      while (done < c.bytes.byteLength) done += writeSync(fd, c.bytes, done, c.bytes.byteLength - done, c.offset + done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Writes `modelPath` and, with `externalData`, the weights file next to it (its `path` must be in
 * the same directory, since ONNX resolves `location` relative to the model). Each file is written
 * to a temporary name and renamed, chunk by chunk, so weights over 2 GiB never sit in one buffer.
 */
export function saveModel(graph: Graph, modelPath: string, opts: SerializeOptions = {}): SerializedModel {
  const s = serialize(graph, opts);
  if (opts.externalData !== undefined) writeAtomic(opts.externalData.path, s.external);
  writeAtomic(modelPath, [{ offset: 0, bytes: s.model }]);
  return s;
}
