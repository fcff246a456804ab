/* The feature recurrences of a whole batch: every well, stretch and sensor in one call.
 *
 * Built and loaded by engine/feature_kernel.py, which documents the why; the state layout
 * (LAST ... SCALES, KINDS, SPREAD) comes from engine/features.py as -D definitions.
 * Compiled with -ffp-contract=off and without -ffast-math: every operation below rounds as
 * the numpy code's did, in the same order, so the numbers are bit for bit the same.
 * Arrays are C-contiguous; int64_t for indices and times.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define WIDTH (SCALES + KINDS) /* numbers per sensor in the state */

/* Stretches without a silence longer than max_gap_ms, as rows (well, start, stop, reset) of
 * `segments` in `order` positions; returns how many. Without `fill`, only counts. */
int64_t feature_segments(const int64_t *times, const int64_t *order, const int64_t *bounds, int64_t wells,
                         const int64_t *previous, int64_t max_gap_ms, int64_t *segments, int fill) {
    int64_t count = 0;
    for (int64_t well = 0; well < wells; well++) {
        int64_t last = previous[well];
        for (int64_t j = bounds[well]; j < bounds[well + 1]; j++) {
            int64_t t = times[order[j]];
            int gap = t - last > max_gap_ms;
            if (j == bounds[well] || gap) {
                if (fill) {
                    if (count && segments[4 * (count - 1)] == well) segments[4 * (count - 1) + 2] = j;
                    int64_t *row = segments + 4 * count;
                    row[0] = well, row[1] = j, row[2] = bounds[well + 1], row[3] = gap;
                }
                count++;
            }
            last = t;
        }
    }
    return count;
}

/* First pass: trailing means, variance, baseline; the raw deviations and the log arguments.
 * Each EWMA is scipy's lfilter for b = [alpha, 0], a = [1, alpha - 1]: y = z + alpha*x, then
 * z = x*0.0 - y*(alpha - 1), from z = (1 - alpha)*state. Writes the level and slope deviations
 * of scored rows (warm-up rows stay 0), squares plus floor squares into log_squares, and per
 * (segment, sensor) the block (first row or -1, rows seen before) and its starting log-scales. */
void feature_means(const double *values, int64_t sensors_count, const int64_t *order, const int64_t *segments,
                   int64_t segments_count, double *sensors, const double *floors, const double *alphas,
                   double relative_floor, double warmup_rows, double *deviations, double *log_squares,
                   uint8_t *scored, int64_t *blocks, double *start_scales) {
    const double a1 = alphas[0], a3 = alphas[1], a10 = alphas[2], ab = alphas[3];
    const double spread_weight = (1.0 - a3) * a3;
    for (int64_t s = 0; s < segments_count; s++) {
        const int64_t well = segments[4 * s], start = segments[4 * s + 1], stop = segments[4 * s + 2];
        double *well_state = sensors + well * sensors_count * WIDTH;
        if (segments[4 * s + 3]) { /* after a long silence the well starts afresh */
            for (int64_t i = 0; i < sensors_count * WIDTH; i++) well_state[i] = NAN;
            for (int64_t c = 0; c < sensors_count; c++) well_state[c * WIDTH + COUNT] = 0.0;
        }
        for (int64_t c = 0; c < sensors_count; c++) {
            double *state = well_state + c * WIDTH;
            int64_t *block = blocks + 2 * (s * sensors_count + c);
            double last = state[LAST], before = 0.0;
            double y1 = 0, y3 = 0, y10 = 0, yb = 0, yv = 0, z1 = 0, z3 = 0, z10 = 0, zb = 0, zv = 0;
            int active = 0;
            block[0] = -1;
            for (int64_t j = start; j < stop; j++) {
                const int64_t r = order[j];
                double x = values[r * sensors_count + c];
                if (isnan(x)) x = last; /* a gap repeats the last value */
                last = x;
                if (!active) {
                    if (isnan(x)) continue;
                    active = 1;
                    before = state[COUNT];
                    if (before == 0.0) { /* first sight: the averages start at the sensor's value */
                        state[MEAN_1M] = state[MEAN_3M] = state[MEAN_10M] = state[BASE] = x;
                        state[VAR_3M] = 0.0;
                        for (int k = 0; k < KINDS; k++) state[SCALES + k] = 0.0;
                    }
                    block[0] = j, block[1] = (int64_t)before;
                    memcpy(start_scales + (s * sensors_count + c) * KINDS, state + SCALES, KINDS * sizeof(double));
                    y3 = state[MEAN_3M];
                    z1 = (1.0 - a1) * state[MEAN_1M];
                    z3 = (1.0 - a3) * state[MEAN_3M];
                    z10 = (1.0 - a10) * state[MEAN_10M];
                    zb = (1.0 - ab) * state[BASE];
                    zv = (1.0 - a3) * state[VAR_3M];
                }
                const double mean_before = y3;
                y1 = z1 + a1 * x;
                z1 = x * 0.0 - y1 * (a1 - 1.0);
                y3 = z3 + a3 * x;
                z3 = x * 0.0 - y3 * (a3 - 1.0);
                y10 = z10 + a10 * x;
                z10 = x * 0.0 - y10 * (a10 - 1.0);
                yb = zb + ab * x;
                zb = x * 0.0 - yb * (ab - 1.0);
                const double d = x - mean_before;
                const double increment = spread_weight * (d * d);
                yv = zv + 1.0 * increment;
                zv = increment * 0.0 - yv * (a3 - 1.0);

                double floor = relative_floor * fabs(yb); /* np.maximum: NaN wins */
                if (!(floor >= floors[c]) && !isnan(floor)) floor = floors[c];
                const double floor_square = floor * floor;
                const double raw[5] = {y1 - yb, y3 - yb, y10 - yb, sqrt(yv), y1 - y3};
                double *out = log_squares + (r * sensors_count + c) * KINDS;
                for (int k = 0; k < KINDS; k++) out[k] = raw[k] * raw[k] + floor_square;
                if (before + (double)(j - block[0]) >= warmup_rows) {
                    scored[r * sensors_count + c] = 1;
                    double *dev = deviations + (r * sensors_count + c) * KINDS;
                    for (int k = 0; k < KINDS; k++)
                        if (k != SPREAD) dev[k] = raw[k];
                }
            }
            if (active) {
                state[LAST] = last;
                state[COUNT] = before + (double)(stop - block[0]);
                state[MEAN_1M] = y1, state[MEAN_3M] = y3, state[MEAN_10M] = y10, state[BASE] = yb;
                state[VAR_3M] = yv;
            }
        }
    }
}

/* Where each (segment, sensor) block's "rows seen before" run starts in the flat counts (-1: no
 * block). Sensors of a stretch that started together with the same history share a run, so
 * numpy's pow runs about once per row. Returns the total length; with `fill`, fills `seen`. */
int64_t feature_divisor_runs(const int64_t *segments, int64_t segments_count, int64_t sensors_count,
                             const int64_t *blocks, int64_t *runs, double *seen, int fill) {
    int64_t total = 0;
    for (int64_t s = 0; s < segments_count; s++) {
        for (int64_t c = 0; c < sensors_count; c++) {
            const int64_t *block = blocks + 2 * (s * sensors_count + c);
            int64_t *run = runs + s * sensors_count + c;
            *run = -1;
            if (block[0] < 0) continue;
            for (int64_t other = 0; other < c; other++) {
                const int64_t *twin = blocks + 2 * (s * sensors_count + other);
                if (runs[s * sensors_count + other] >= 0 && twin[0] == block[0] && twin[1] == block[1]) {
                    *run = runs[s * sensors_count + other];
                    break;
                }
            }
            if (*run >= 0) continue;
            *run = total;
            const int64_t rows = segments[4 * s + 2] - block[0];
            if (fill)
                for (int64_t i = 0; i < rows; i++) seen[total + i] = (double)(block[1] + i);
            total += rows;
        }
    }
    return total;
}

/* Second pass: each kind's running log-scale as of the previous row, bias-corrected by
 * divisors[run + i] = 1 - (1 - alpha)**(rows seen before row i). Writes the spread into
 * deviations and -0.5*scale over the log square (its exp scales the other kinds). The state
 * keeps the sums of a well's last stretch (an earlier one in the batch was followed by a restart). */
void feature_scales(const int64_t *order, const int64_t *segments, int64_t segments_count, int64_t sensors_count,
                    double *sensors, double alpha, const int64_t *blocks, const double *start_scales,
                    const int64_t *runs, const double *divisors, double *deviations, double *log_squares,
                    const uint8_t *scored) {
    for (int64_t s = 0; s < segments_count; s++) {
        const int64_t well = segments[4 * s], stop = segments[4 * s + 2];
        const int last_stretch = s + 1 == segments_count || segments[4 * (s + 1)] != well;
        for (int64_t c = 0; c < sensors_count; c++) {
            const int64_t first = blocks[2 * (s * sensors_count + c)];
            if (first < 0) continue;
            const double *divisor = divisors + runs[s * sensors_count + c]; /* row j: divisor[j - first] */
            double previous[5], z[5];
            for (int k = 0; k < KINDS; k++) {
                previous[k] = start_scales[(s * sensors_count + c) * KINDS + k];
                z[k] = (1.0 - alpha) * previous[k];
            }
            for (int64_t j = first; j < stop; j++) {
                const int64_t r = order[j];
                const int is_scored = scored[r * sensors_count + c];
                double *cell = log_squares + (r * sensors_count + c) * KINDS;
                for (int k = 0; k < KINDS; k++) {
                    const double value = cell[k];
                    const double scale = previous[k] / divisor[j - first];
                    previous[k] = z[k] + alpha * value;
                    z[k] = value * 0.0 - previous[k] * (alpha - 1.0);
                    if (is_scored) {
                        if (k == SPREAD) deviations[(r * sensors_count + c) * KINDS + k] = 0.5 * (value - scale);
                        cell[k] = -0.5 * scale;
                    }
                }
            }
            if (last_stretch)
                for (int k = 0; k < KINDS; k++) sensors[(well * sensors_count + c) * WIDTH + SCALES + k] = previous[k];
        }
    }
}

/* Third pass: each scored level and slope times its exp(-scale/2), i.e. in typical sizes. */
void feature_apply_scales(double *deviations, const double *factors, const uint8_t *scored, int64_t cells) {
    for (int64_t i = 0; i < cells; i++)
        if (scored[i])
            for (int k = 0; k < KINDS; k++)
                if (k != SPREAD) deviations[i * KINDS + k] *= factors[i * KINDS + k];
}

/* np.maximum's choice: a NaN on either side wins, a tie gives the second argument. */
static double numpy_maximum(double a, double b) {
    if (isnan(a)) return a;
    if (isnan(b)) return b;
    return a > b ? a : b;
}

/* np.sign's: 1, -1, 0 for either zero, NaN as it is. */
static double numpy_sign(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; }

/* Model inputs, first pass: per row, each sensor's |fastest level| and each kind's largest
 * magnitude over the sensors (the first sensor's, then np.maximum with each next one), into
 * `inputs` (rows x (sensors + KINDS)); the raw spread is kept apart, as it takes no log1p. */
void feature_inputs_magnitudes(const double *deviations, int64_t rows, int64_t sensors_count, double *inputs,
                               double *spread) {
    const int64_t width = sensors_count + KINDS;
    for (int64_t r = 0; r < rows; r++) {
        const double *row = deviations + r * sensors_count * KINDS;
        double *out = inputs + r * width;
        for (int64_t c = 0; c < sensors_count; c++) out[c] = fabs(row[c * KINDS + PER_SENSOR]);
        for (int k = 0; k < KINDS; k++) {
            double largest = fabs(row[k]);
            for (int64_t c = 1; c < sensors_count; c++) largest = numpy_maximum(largest, fabs(row[c * KINDS + k]));
            out[sensors_count + k] = largest;
        }
        spread[r] = out[sensors_count + SPREAD];
    }
}

/* Second pass, after numpy's log1p over `inputs`: the signed levels, the raw spread back, and
 * the dead band (sign(v) * max(|v| - dead_band, 0)) on all. */
void feature_inputs_finish(const double *deviations, int64_t rows, int64_t sensors_count, double *inputs,
                           const double *spread, double dead_band) {
    const int64_t width = sensors_count + KINDS;
    for (int64_t r = 0; r < rows; r++) {
        double *out = inputs + r * width;
        for (int64_t c = 0; c < sensors_count; c++)
            out[c] = numpy_sign(deviations[(r * sensors_count + c) * KINDS + PER_SENSOR]) * out[c];
        out[sensors_count + SPREAD] = spread[r];
        for (int64_t i = 0; i < width; i++)
            out[i] = numpy_sign(out[i]) * numpy_maximum(fabs(out[i]) - dead_band, 0.0);
    }
}
