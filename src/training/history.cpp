// History::plot_svg: the training curves as one self-contained SVG file. Losses (the total,
// per-output losses and each regularization term) on the left panel, metrics on the right;
// training solid, validation dashed in the same colour; a log scale when the values span more
// than two decades. Written to a temporary file and renamed into place.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "normnet/training.h"

namespace normnet {
namespace {

using detail::str;

// Tableau 10, the default colour cycle of matplotlib.
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr double kPanelW = 520, kPlotH = 300, kLeft = 72, kRight = 20, kTop = 64, kLegendRow = 18;

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", std::fabs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

bool is_loss_key(const std::string& key) {
  return key == "loss" || key.find('/') != std::string::npos ||
         (key.size() > 5 && key.compare(key.size() - 5, 5, "_loss") == 0);
}

struct Series {
  std::string name;
  const std::vector<double>* values;
  const char* color;
  bool val;
};

// 1, 2 or 5 times a power of ten, near range/target.
double nice_step(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
  [[nodiscard]] double frac(double v) const {
    const double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    return (a - l) / (h - l);
  }
};

Axis value_axis(const std::vector<Series>& series) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series) {
    for (double v : *s.values) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  Axis a;
  if (!std::isfinite(lo)) return a;
  if (lo > 0 && hi / lo > 100) {
    a.log = true;
    a.lo = std::pow(10.0, std::floor(std::log10(lo)));
    a.hi = std::pow(10.0, std::ceil(std::log10(hi)));
    const int decades = static_cast<int>(std::lround(std::log10(a.hi / a.lo)));
    const int every = std::max(1, decades / 8);
    for (double t = a.lo; t <= a.hi * 1.0001; t *= std::pow(10.0, every)) a.ticks.push_back(t);
    return a;
  }
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = std::max(std::fabs(hi) * 0.1, 1e-3);
    lo -= pad, hi += pad;
  }
  const double step = nice_step(hi - lo, 5);
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) a.ticks.push_back(t);
  return a;
}

Axis epoch_axis(const std::vector<int>& epochs) {
  Axis a;
  a.lo = epochs.front() + 1;
  a.hi = epochs.back() + 1;
  if (a.hi <= a.lo) a.lo -= 1, a.hi += 1;
  const double step = std::max(1.0, nice_step(a.hi - a.lo, 8));
  for (double t = std::ceil(a.lo / step) * step; t <= a.hi + 1e-9; t += step) a.ticks.push_back(t);
  return a;
}

// One panel at horizontal offset x0: frame, grid, ticks, labels, curves, legend.
void draw_panel(std::ostream& out, double x0, const std::string& heading, const std::vector<Series>& series,
                const std::vector<int>& epochs) {
  const Axis xa = epoch_axis(epochs);
  const Axis ya = value_axis(series);
  const double px = x0 + kLeft, pw = kPanelW - kLeft - kRight, py = kTop, ph = kPlotH;
  auto X = [&](double e) { return px + xa.frac(e) * pw; };
  auto Y = [&](double v) { return py + ph - ya.frac(v) * ph; };
  out << "<g class=\"panel\">\n";
  out << "<text x=\"" << num(px + pw / 2) << "\" y=\"" << num(py - 12) << "\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
      << escape(heading + (ya.log ? " (log scale)" : "")) << "</text>\n";
  out << "<rect x=\"" << num(px) << "\" y=\"" << num(py) << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
      << "\" fill=\"white\" stroke=\"#333\"/>\n";
  for (double t : ya.ticks) {
    out << "<line x1=\"" << num(px) << "\" x2=\"" << num(px + pw) << "\" y1=\"" << num(Y(t)) << "\" y2=\"" << num(Y(t))
        << "\" stroke=\"#e5e5e5\"/>\n";
    out << "<text x=\"" << num(px - 6) << "\" y=\"" << num(Y(t) + 4) << "\" text-anchor=\"end\" font-size=\"11\">"
        << tick_label(t) << "</text>\n";
  }
  for (double t : xa.ticks) {
    out << "<line x1=\"" << num(X(t)) << "\" x2=\"" << num(X(t)) << "\" y1=\"" << num(py + ph) << "\" y2=\"" << num(py + ph + 5)
        << "\" stroke=\"#333\"/>\n";
    out << "<text x=\"" << num(X(t)) << "\" y=\"" << num(py + ph + 18) << "\" text-anchor=\"middle\" font-size=\"11\">"
        << tick_label(t) << "</text>\n";
  }
  out << "<text x=\"" << num(px + pw / 2) << "\" y=\"" << num(py + ph + 36) << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";
  out << "<text transform=\"translate(" << num(x0 + 16) << "," << num(py + ph / 2)
      << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" << escape(heading) << "</text>\n";
  for (const Series& s : series) {
    const std::string dash = s.val ? " stroke-dasharray=\"6,4\"" : "";
    std::string points;
    std::string dots;
    for (std::size_t i = 0; i < s.values->size() && i < epochs.size(); ++i) {
      const double v = (*s.values)[i];
      if (!std::isfinite(v) || (ya.log && v <= 0)) continue;
      const double x = X(epochs[i] + 1), y = Y(v);
      if (!points.empty()) points += ' ';
      points.append(num(x)).append(",").append(num(y));
      dots.append(str("<circle cx=\"", num(x), "\" cy=\"", num(y), "\" r=\"2.5\" fill=\"", s.val ? "white" : s.color,
                      "\" stroke=\"", s.color, "\"/>"));
    }
    out << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\"" << dash << " points=\"" << points
        << "\"><title>" << escape(s.name) << "</title></polyline>\n" << dots << "\n";
  }
  double ly = py + ph + 58;
  for (const Series& s : series) {
    out << "<line x1=\"" << num(px) << "\" x2=\"" << num(px + 28) << "\" y1=\"" << num(ly - 4) << "\" y2=\"" << num(ly - 4)
        << "\" stroke=\"" << s.color << "\" stroke-width=\"2\"" << (s.val ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
    out << "<text x=\"" << num(px + 36) << "\" y=\"" << num(ly) << "\" font-size=\"12\">" << escape(s.name) << "</text>\n";
    ly += kLegendRow;
  }
  out << "</g>\n";
}

// The series of one panel: each training key in its colour, its "val_" twin dashed beside it.
std::vector<Series> panel_series(const History& h, bool losses) {
  std::vector<Series> out;
  std::vector<std::string> bases;
  for (const auto& [key, values] : h.history) {
    const bool val = key.rfind("val_", 0) == 0;
    if (val && h.history.count(key.substr(4))) continue;  // drawn beside its training twin
    if (is_loss_key(val ? key.substr(4) : key) == losses) bases.push_back(key);
  }
  // "loss" first, then the others in name order.
  std::stable_sort(bases.begin(), bases.end(), [](const std::string& a, const std::string& b) {
    return (a == "loss") > (b == "loss");
  });
  for (std::size_t i = 0; i < bases.size(); ++i) {
    const char* color = kColors[i % (sizeof kColors / sizeof *kColors)];
    out.push_back(Series{bases[i], &h.history.at(bases[i]), color, bases[i].rfind("val_", 0) == 0});
    if (auto it = h.history.find("val_" + bases[i]); it != h.history.end()) {
      out.push_back(Series{it->first, &it->second, color, true});
    }
  }
  return out;
}

std::string render(const History& h, const std::string& title) {
  std::vector<std::vector<Series>> panels;
  std::vector<std::string> headings;
  if (!h.epoch.empty()) {
    for (bool losses : {true, false}) {
      auto series = panel_series(h, losses);
      if (series.empty()) continue;
      panels.push_back(std::move(series));
      headings.push_back(losses ? "loss" : "metrics");
    }
  }
  std::size_t rows = 0;
  for (const auto& p : panels) rows = std::max(rows, p.size());
  const double width = kPanelW * static_cast<double>(std::max<std::size_t>(1, panels.size()));
  const double height = kTop + kPlotH + 58 + kLegendRow * static_cast<double>(rows) + 8;
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\"" << num(height)
      << "\" viewBox=\"0 0 " << num(width) << " " << num(height) << "\" font-family=\"sans-serif\">\n";
  out << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out << "<text x=\"" << num(width / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
      << escape(title) << "</text>\n";
  if (panels.empty()) {
    out << "<text x=\"" << num(width / 2) << "\" y=\"" << num(height / 2) << "\" text-anchor=\"middle\" font-size=\"14\">no epochs recorded</text>\n";
  }
  for (std::size_t i = 0; i < panels.size(); ++i) draw_panel(out, kPanelW * static_cast<double>(i), headings[i], panels[i], h.epoch);
  out << "</svg>\n";
  return out.str();
}

}  // namespace

void History::plot_svg(const std::string& path, const std::string& title) const {
  for (const auto& [key, values] : history) {
    if (values.size() != epoch.size()) {
      throw ValueError(str("History::plot_svg: '", key, "' has ", values.size(), " values for ", epoch.size(), " epochs"));
    }
  }
  const std::string svg = render(*this, title);
  // Write beside the target and rename: a reader never sees a half-written file.
  const std::string tmp = str(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(str("History::plot_svg: cannot write '", tmp, "' (for '", path, "')"));
    out << svg;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw IoError(str("History::plot_svg: writing '", tmp, "' failed (disk full?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError(str("History::plot_svg: cannot rename '", tmp, "' to '", path, "'"));
  }
}

}  // namespace normnet
