import { durationSchema, type JsonSchema } from '../../plugin-sdk/index.js';

export interface SlowStartOptions {
  /** ms */
  window: number;
  aggression: number;
  min_weight_percent: number;
}

export const schema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    window: durationSchema(
      'How long a backend that is added or comes back up takes to ramp from min_weight_percent to its full weight.',
      { default: '30s', minimum: 1 },
    ),
    aggression: {
      description:
        'Shape of the ramp (Envoy): weight x (elapsed / window)^(1 / aggression). 1 is linear; above 1 the weight rises fast at first, below 1 slowly.',
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 100,
      default: 1,
    },
    min_weight_percent: {
      description: 'The least share of its weight a ramping backend gets, in percent (Envoy default 10).',
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 100,
      default: 10,
    },
  },
};
