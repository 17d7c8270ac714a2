// The tool's helpers: area resizing of images, IDX detection, confusion matrix counts and its SVG,
// class names and argmax.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "confusion_svg.h"
#include "image_input.h"
#include "model_files.h"
#include "normnet/error.h"
#include "support/expect_throw.h"
#include "support/temp_dir.h"

namespace normnet::cli {
namespace {

Tensor gray(std::vector<float> values, int64_t h, int64_t w) { return Tensor::from_vector(values, {h, w, 1}); }

TEST(ResizeArea, HalvingAveragesEachTwoByTwoBlock) {
  const Tensor out = resize_area(gray({1, 2, 3, 4,  //
                                       5, 6, 7, 8,  //
                                       0, 0, 1, 1,  //
                                       0, 0, 1, 1},
                                      4, 4),
                                 2, 2);
  EXPECT_EQ(out.shape(), (Shape{2, 2, 1}));
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{3.5f, 5.5f, 0.0f, 1.0f}));
}

TEST(ResizeArea, FractionalCoverageIsWeighted) {
  // 3 -> 2 columns: output 0 covers [0, 1.5): (1·a + 0.5·b)/1.5; output 1 covers [1.5, 3).
  const Tensor out = resize_area(gray({3, 6, 9}, 1, 3), 1, 2);
  EXPECT_FLOAT_EQ(out.to_vector<float>()[0], (3.0f + 0.5f * 6.0f) / 1.5f);
  EXPECT_FLOAT_EQ(out.to_vector<float>()[1], (0.5f * 6.0f + 9.0f) / 1.5f);
}

TEST(ResizeArea, EnlargingRepeatsPixelsAndConstantsStayConstant) {
  EXPECT_EQ(resize_area(gray({1, 2}, 1, 2), 2, 4).to_vector<float>(), (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2}));
  const Tensor big = Tensor::full({300, 451, 1}, 0.25f);
  for (float v : resize_area(big, 28, 28).to_vector<float>()) EXPECT_NEAR(v, 0.25f, 1e-6f);
}

TEST(ResizeArea, RejectsColourImagesAndEmptySizes) {
  testing::expect_throw_with<ShapeError>([] { (void)resize_area(Tensor::zeros({4, 4, 3}), 2, 2); },
                                         {"resize_area", "[4, 4, 3]"});
  testing::expect_throw_with<ShapeError>([] { (void)resize_area(Tensor::zeros({4, 4, 1}), 0, 2); }, {"0x2"});
}

TEST(LooksLikeIdx, ByFirstBytes) {
  const testing::TempDir dir;
  auto write = [&](const std::string& name, std::string bytes) {
    std::ofstream(dir.file(name), std::ios::binary) << bytes;
    return dir.file(name);
  };
  EXPECT_TRUE(looks_like_idx(write("a", std::string("\0\0\x08\x03", 4) + "rest")));
  EXPECT_TRUE(looks_like_idx(write("b.gz", std::string("\x1f\x8b\x08\x00", 4))));
  EXPECT_FALSE(looks_like_idx(write("c.png", "\x89PNG\r\n")));
  EXPECT_FALSE(looks_like_idx(write("d", "ab")));
  EXPECT_FALSE(looks_like_idx(dir.file("missing")));
}

TEST(ConfusionMatrix, CountsTrueRowsAgainstPredictedColumns) {
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 2}, {4});
  const Tensor scores = Tensor::from_vector(std::vector<float>{0.9f, 0.1f, 0.0f,  //
                                             0.8f, 0.1f, 0.1f,  //
                                             0.0f, 0.2f, 0.7f,  //
                                             0.5f, 0.5f, 0.0f},  // a tie: the first maximum wins
                                            {4, 3});
  EXPECT_EQ(confusion_matrix(labels, scores), (ConfusionMatrix{{1, 0, 0}, {1, 0, 0}, {1, 0, 1}}));
}

TEST(ConfusionMatrix, RejectsBadLabelsAndShapes) {
  const Tensor scores = Tensor::zeros({2, 3});
  testing::expect_throw_with<ValueError>(
      [&] { (void)confusion_matrix(Tensor::from_vector(std::vector<int64_t>{0, 3}, {2}), scores); },
      {"label 3 of sample 1", "[0, 3)"});
  testing::expect_throw_with<ValueError>(
      [&] { (void)confusion_matrix(Tensor::from_vector(std::vector<int64_t>{0}, {1}), scores); }, {"[1]", "[2, 3]"});
}

TEST(ConfusionSvg, WellFormedWithCountsRecallAndEscapedNames) {
  const testing::TempDir dir;
  const std::string path = dir.file("cm.svg");
  write_confusion_svg(path, {{8, 2}, {1, 9}}, {"T-shirt/top", "A&B"}, "title <1>");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string svg = text.str();
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>\n"), std::string::npos);
  EXPECT_NE(svg.find("title &lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find("accuracy 85.00% of 20 samples"), std::string::npos);
  EXPECT_NE(svg.find(">80.0%<"), std::string::npos);  // recall of class 0
  EXPECT_NE(svg.find(">90.0%<"), std::string::npos);
  EXPECT_NE(svg.find("A&amp;B predicted as T-shirt/top: 1"), std::string::npos);
  EXPECT_EQ(svg.find("A&B"), std::string::npos);
  testing::expect_throw_with<IoError>([&] { write_confusion_svg(dir.file("no/such/dir.svg"), {{1}}, {"a"}, "t"); },
                                      {"cannot write", "dir.svg"});
}

TEST(ModelFiles, ClassNamesArgmaxAndLimits) {
  EXPECT_EQ(class_names(10)[0], "T-shirt/top");
  EXPECT_EQ(class_names(10)[9], "Ankle boot");
  EXPECT_EQ(class_names(3), (std::vector<std::string>{"class 0", "class 1", "class 2"}));
  const float scores[] = {0.1f, 0.7f, 0.7f, -1.0f};
  EXPECT_EQ(argmax(scores, 4), 1);
  EXPECT_EQ(fixed(0.91234), "0.9123");
  const datasets::Split split{Tensor::zeros({5, 28, 28, 1}), Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4}, {5})};
  EXPECT_EQ(first_samples(split, 2, "--limit").y.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(first_samples(split, 0, "--limit").x.shape()[0], 5);
  testing::expect_throw_with<ValueError>([&] { (void)first_samples(split, 6, "train --limit"); },
                                         {"train --limit", "1 to 5", "got 6"});
}

}  // namespace
}  // namespace normnet::cli
