/* svg.c: inline-SVG charts (see svg.h). Coordinates are printed with one decimal: a tenth of a
 * pixel is finer than any screen shows, and it keeps the report small. */
#include "lib/image/svg.h"

#include <math.h>
#include <stdio.h>

static double px(const SvgChart *c, double x)
{
    double t = (x - c->x0) / (c->x1 - c->x0);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return c->left + t * (c->w - c->left - c->right);
}

static double py(const SvgChart *c, double y)
{
    double t = (y - c->y0) / (c->y1 - c->y0);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return c->h - c->bottom - t * (c->h - c->top - c->bottom);
}

void svg_escape(StrBuf *b, const char *s)
{
    for (; s && *s; s++)
        switch (*s) {
        case '&': strbuf_puts(b, "&amp;"); break;
        case '<': strbuf_puts(b, "&lt;"); break;
        case '>': strbuf_puts(b, "&gt;"); break;
        case '"': strbuf_puts(b, "&quot;"); break;
        default: strbuf_putc(b, *s);
        }
}

/* A tick label: short, without trailing zeros. */
static void tick_label(char *out, size_t cap, double v)
{
    snprintf(out, cap, "%.3g", fabs(v) < 1e-12 ? 0.0 : v);
}

void svg_begin(SvgChart *c, StrBuf *b, int w, int h, double x0, double x1, double y0, double y1,
               const char *title, const char *xlabel, const char *ylabel)
{
    *c = (SvgChart){.b = b,
                    .w = w,
                    .h = h,
                    .x0 = x0,
                    .x1 = x1 > x0 ? x1 : x0 + 1,
                    .y0 = y0,
                    .y1 = y1 > y0 ? y1 : y0 + 1,
                    .left = ylabel ? 52 : 150,
                    .right = 12,
                    .top = 26,
                    .bottom = 40};
    strbuf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\" "
                  "role=\"img\"><title>",
                  w, h, w, h);
    svg_escape(b, title);
    strbuf_puts(b, "</title>\n");
    strbuf_printf(b,
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
                  "stroke=\"#888\"/>\n",
                  c->left, c->top, w - c->left - c->right, h - c->top - c->bottom);
    for (int i = 0; i <= 4; i++) {
        char lab[32];
        double xv = c->x0 + (c->x1 - c->x0) * i / 4, yv = c->y0 + (c->y1 - c->y0) * i / 4;
        double x = px(c, xv), y = py(c, yv);
        tick_label(lab, sizeof lab, xv);
        strbuf_printf(b,
                      "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
                      "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                      x, c->top, x, h - c->bottom, x, h - c->bottom + 14, lab);
        tick_label(lab, sizeof lab, yv);
        if (!ylabel)
            continue;
        strbuf_printf(b,
                      "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                      c->left, y, w - c->right, y, c->left - 4, y + 4, lab);
    }
    strbuf_printf(b, "<text x=\"%d\" y=\"16\" font-weight=\"bold\">", c->left);
    svg_escape(b, title);
    strbuf_printf(b, "</text>\n<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                  (c->left + w - c->right) / 2.0, h - 6);
    svg_escape(b, xlabel);
    strbuf_printf(b,
                  "</text>\n<text transform=\"translate(12 %.1f) rotate(-90)\" "
                  "text-anchor=\"middle\">",
                  (c->top + h - c->bottom) / 2.0);
    svg_escape(b, ylabel);
    strbuf_puts(b, "</text>\n");
}

void svg_row_label(SvgChart *c, double y, const char *text)
{
    strbuf_printf(c->b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", c->left - 6,
                  py(c, y) + 4);
    svg_escape(c->b, text);
    strbuf_puts(c->b, "</text>\n");
}

void svg_line(SvgChart *c, const double *x, const double *y, int n, const char *color, double width,
              int dashed)
{
    int open = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(y[i])) { /* a gap: close the current run */
            if (open)
                strbuf_puts(c->b, "\"/>\n");
            open = 0;
            continue;
        }
        if (!open)
            strbuf_printf(c->b,
                          "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s "
                          "points=\"",
                          color, width, dashed ? " stroke-dasharray=\"4 3\"" : "");
        strbuf_printf(c->b, "%s%.1f,%.1f", open ? " " : "", px(c, x[i]), py(c, y[i]));
        open = 1;
    }
    if (open)
        strbuf_puts(c->b, "\"/>\n");
}

void svg_dots(SvgChart *c, const double *x, const double *y, int n, const char *color, double r)
{
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]) && !isnan(y[i]))
            strbuf_printf(c->b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n",
                          px(c, x[i]), py(c, y[i]), r, color);
}

void svg_interval(SvgChart *c, double y, double lo, double est, double hi, const char *color)
{
    double yy = py(c, y);
    if (!isnan(lo) && !isnan(hi))
        strbuf_printf(c->b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"1.5\"/>\n",
                      px(c, lo), yy, px(c, hi), yy, color);
    if (!isnan(est))
        strbuf_printf(c->b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"%s\"/>\n",
                      px(c, est) - 3.5, yy - 3.5, color);
}

void svg_text(SvgChart *c, double x, double y, const char *text)
{
    strbuf_printf(c->b, "<text x=\"%.1f\" y=\"%.1f\">", px(c, x), py(c, y) + 4);
    svg_escape(c->b, text);
    strbuf_puts(c->b, "</text>\n");
}

void svg_legend(SvgChart *c, int n, const char *const *names, const char *const *colors)
{
    for (int i = 0; i < n; i++) {
        int y = c->top + 12 + 14 * i;
        strbuf_printf(c->b,
                      "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"3\" fill=\"%s\"/>"
                      "<text x=\"%d\" y=\"%d\">",
                      c->left + 8, y - 3, colors[i], c->left + 22, y + 1);
        svg_escape(c->b, names[i]);
        strbuf_puts(c->b, "</text>\n");
    }
}

void svg_end(SvgChart *c)
{
    strbuf_puts(c->b, "</svg>\n");
}

const char *svg_color(int k)
{
    static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                          "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
    return palette[(k < 0 ? -k : k) % 10];
}
