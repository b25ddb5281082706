// The balancer configurations the bench compares (plugin options as YAML flow mappings).

/**
 * @typedef {object} Balancer
 * @property {string} name
 * @property {string} plugins                    one line under `plugins:`
 * @property {(i: number) => number} [weights]   weight of backend i (default 1)
 */

/** @type {Balancer[]} */
export const balancers = [
  { name: 'round-robin', plugins: 'round-robin: {}' },
  { name: 'round-robin, weights 1-3', plugins: 'round-robin: {}', weights: (i) => 1 + (i % 3) },
  { name: 'least-connections', plugins: 'least-connections: {}' },
  { name: 'p2c', plugins: 'p2c: {}' },
  { name: 'consistent-hash maglev', plugins: 'consistent-hash: { algorithm: maglev }' },
  { name: 'consistent-hash ring', plugins: 'consistent-hash: { algorithm: ring }' },
  {
    name: 'consistent-hash maglev, bounded_load 1.25',
    plugins: 'consistent-hash: { algorithm: maglev, bounded_load: 1.25 }',
  },
];

/** The spread workload runs the unweighted ones (weights would say nothing about speed). */
export const spreadBalancers = balancers.filter((b) => b.weights === undefined);
