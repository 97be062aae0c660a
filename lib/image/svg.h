/* svg.h: small inline-SVG charts for the report: axes with ticks, polylines, interval rows
 * (forest plots) and a legend, written into a StrBuf. No fonts or scripts to load: the report
 * stays one self-contained HTML file.
 *
 * A chart maps data (x0..x1, y0..y1) onto a w x h pixel box with margins for the axes' labels:
 *   SvgChart c;
 *   svg_begin(&c, b, 360, 260, 0, 1, 0, 1, "ROC", "1 - specificity", "sensitivity");
 *   svg_line(&c, fpr, tpr, n, svg_color(0), 1.5, 0);
 *   svg_end(&c);
 * Values outside the data box are drawn clipped to it; NaN points break a polyline. */
#ifndef ONFH_SVG_H
#define ONFH_SVG_H

#include "lib/util/strbuf.h"

typedef struct SvgChart {
    StrBuf *b;
    int w, h;
    double x0, x1, y0, y1;
    int left, right, top, bottom; /* margins, pixels */
} SvgChart;

/* Opens <svg>, draws the frame, 5 ticks a side with labels, the title and the axis labels.
 * ylabel NULL makes a chart of labelled rows (a forest plot): no y ticks, a wide left margin
 * for svg_row_label. */
void svg_begin(SvgChart *c, StrBuf *b, int w, int h, double x0, double x1, double y0, double y1,
               const char *title, const char *xlabel, const char *ylabel);
/* A polyline through (x[i], y[i]); dashed = 1 for a dashed stroke. */
void svg_line(SvgChart *c, const double *x, const double *y, int n, const char *color, double width,
              int dashed);
/* Dots of radius r at (x[i], y[i]). */
void svg_dots(SvgChart *c, const double *x, const double *y, int n, const char *color, double r);
/* A horizontal interval [lo, hi] at height y with a square at est (a forest plot's row). */
void svg_interval(SvgChart *c, double y, double lo, double est, double hi, const char *color);
/* Text at data (x, y), left-aligned. */
void svg_text(SvgChart *c, double x, double y, const char *text);
/* Text right-aligned in the left margin at height y (a row's name). */
void svg_row_label(SvgChart *c, double y, const char *text);
/* A legend in the top-left corner of the plot area. */
void svg_legend(SvgChart *c, int n, const char *const *names, const char *const *colors);
void svg_end(SvgChart *c);

/* The k-th of a palette of distinguishable colours (cycles after 10). */
const char *svg_color(int k);
/* s with &, <, >, " escaped, appended to b (for text in HTML and SVG). */
void svg_escape(StrBuf *b, const char *s);

#endif
