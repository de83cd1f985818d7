// The CheckpointManager's tensor codec over safetensors (models' writeSafetensors/openSafetensors):
// one file `tensors.safetensors`, tensors ordered by name, every dtype of CheckpointTensor kept exactly
// (float16/bfloat16 as raw Uint16 bits).
import { join } from 'node:path';
import { inputError } from '@latent-sft/core';
import { type Dtype, type TensorArray, openSafetensors, writeSafetensors } from '@latent-sft/models';
import type { CheckpointTensor, TensorCodec, TensorDtype } from './checkpoint.js';

const TO_ST: Record<TensorDtype, Dtype> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_ST: Partial<Record<Dtype, TensorDtype>> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as TensorDtype]));
const CTOR: Record<TensorDtype, abstract new (n: number) => ArrayBufferView> = {
  float64: Float64Array,
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

const FILE = 'tensors.safetensors';

/** safetensors as the checkpoint tensor format (`format: 'safetensors'`). */
export const safetensorsCodec: TensorCodec = {
  format: 'safetensors',
  write(dir, tensors) {
    const list = tensors.map((t) => {
      const st = TO_ST[t.dtype];
      if (st === undefined) throw new Error(`safetensors codec: tensor '${t.name}' has unsupported dtype ${String(t.dtype)}`);
      if (!(t.data instanceof CTOR[t.dtype])) {
        throw new Error(
          `safetensors codec: tensor '${t.name}' of dtype ${t.dtype} needs ${CTOR[t.dtype].name} data, got ${(t.data as object).constructor.name}`,
        );
      }
      return { name: t.name, dtype: st, shape: [...t.shape], data: t.data as TensorArray };
    });
    writeSafetensors(join(dir, FILE), list);
    return [FILE];
  },
  read(dir, files) {
    if (files.length !== 1 || files[0] !== FILE)
      throw inputError({ file: join(dir, 'manifest.json'), field: 'tensorFiles' }, `expected ["${FILE}"], got ${JSON.stringify(files)}`);
    const f = openSafetensors(join(dir, FILE));
    return f.tensors.map((info): CheckpointTensor => {
      const dtype = FROM_ST[info.dtype];
      if (dtype === undefined) throw inputError({ file: f.path, field: `tensor '${info.name}'` }, `dtype ${info.dtype} is not a checkpoint dtype`);
      return { name: info.name, dtype, shape: info.shape, data: f.readTensor(info.name) };
    });
  },
};
