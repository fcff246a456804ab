/* The walk of a tree ensemble's rows to their leaves, summing each tree's leaf values.
 *
 * Built and loaded by engine/tree_walk.py, which documents the array layout and why this is
 * scikit-learn's arithmetic bit for bit. Compiled with -ffp-contract=off and without
 * -ffast-math: the additions happen as written, tree after tree. Arrays are C-contiguous.
 */
#include <math.h>
#include <stdint.h>

void tree_walk_sum(const float *x, int64_t rows, int64_t width, const int64_t *roots, int64_t trees,
                   const int64_t *right, const int64_t *feature, const double *threshold,
                   const uint8_t *missing_left, const double *values, int64_t outputs, double *out) {
    /* Tree by tree, then row by row with real branches: a well's consecutive rows mostly take
     * the same path, which the processor predicts. */
    for (int64_t t = 0; t < trees; t++) {
        for (int64_t i = 0; i < rows; i++) {
            const float *row = x + i * width;
            int64_t node = roots[t];
            for (;;) {
                int64_t child = right[node];
                if (child < 0) break; /* a leaf */
                float value = row[feature[node]];
                /* scikit-learn's rule: the float32 value widened to double against the threshold;
                 * a missing value goes where the node learned to send it */
                if ((double)value <= threshold[node] || (isnan(value) && missing_left[node])) node += 1;
                else node = child;
            }
            const double *leaf = values + node * outputs;
            double *total = out + i * outputs;
            for (int64_t k = 0; k < outputs; k++) total[k] += leaf[k];
        }
    }
}
