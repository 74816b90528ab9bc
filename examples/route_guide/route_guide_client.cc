// A route guide client, over shared memory: calls each of the four RPCs of
// route_guide_server once (unary, server streaming, client streaming and
// bidirectional streaming), prints what it got and checks it against what it
// sent and the server's fixed feature grid. Exits non-zero if an RPC fails or
// a result is wrong. Compared with the same client over TCP, only the target
// and the credentials in CreateChannel differ; the RPC code is plain gRPC.
//
//   route_guide_client [target]    default: shm:///tmp/route_guide.sock
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "grpc_shm/grpc_shm.h"
#include "route_guide.grpc.pb.h"

namespace {

// The server's features: one at every point of a 10 x 10 grid with 0.1 degree
// spacing from (40.0, -75.0), named "Feature <row>,<column>".
constexpr int kGridSize = 10;
constexpr int kOriginLatitude = 400000000;
constexpr int kOriginLongitude = -750000000;
constexpr int kSpacing = 1000000;

routeguide::Point MakePoint(int32_t latitude, int32_t longitude) {
  routeguide::Point p;
  p.set_latitude(latitude);
  p.set_longitude(longitude);
  return p;
}

routeguide::Point GridPoint(int row, int col) {
  return MakePoint(kOriginLatitude + row * kSpacing, kOriginLongitude + col * kSpacing);
}

std::string GridName(int row, int col) {
  return "Feature " + std::to_string(row) + "," + std::to_string(col);
}

std::string ToString(const routeguide::Point& p) {
  return "(" + std::to_string(p.latitude() / 1e7) + ", " + std::to_string(p.longitude() / 1e7) +
         ")";
}

// The same great-circle distance (metres) as the server's.
double Distance(const routeguide::Point& a, const routeguide::Point& b) {
  constexpr double kCoordFactor = 10000000.0;
  constexpr double kRadius = 6371000;
  constexpr double kPi = 3.14159265358979323846;
  auto rad = [&](int32_t e7) { return e7 / kCoordFactor * kPi / 180; };
  double lat1 = rad(a.latitude()), lat2 = rad(b.latitude());
  double dlat = lat2 - lat1;
  double dlon = rad(b.longitude()) - rad(a.longitude());
  double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1) * std::cos(lat2) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return kRadius * 2 * std::atan2(std::sqrt(h), std::sqrt(1 - h));
}

class RouteGuideClient {
 public:
  explicit RouteGuideClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(routeguide::RouteGuide::NewStub(channel)) {}

  int failures() const { return failures_; }

  void GetFeature() {
    std::cout << "-- GetFeature" << std::endl;
    // A point on the grid has a named feature; one off it has none.
    CheckFeatureAt(GridPoint(3, 5), GridName(3, 5));
    CheckFeatureAt(MakePoint(0, 0), "");
  }

  void ListFeatures() {
    std::cout << "-- ListFeatures" << std::endl;
    // Rows 2..4 and columns 2..5 of the grid: 3 x 4 = 12 features.
    routeguide::Rectangle rect;
    *rect.mutable_lo() = MakePoint(401500000, -748500000);  // (40.15, -74.85)
    *rect.mutable_hi() = MakePoint(404500000, -744500000);  // (40.45, -74.45)
    const int expected = 12;
    grpc::ClientContext context;
    SetDeadline(&context);
    auto reader = stub_->ListFeatures(&context, rect);
    routeguide::Feature feature;
    std::set<std::string> names;
    while (reader->Read(&feature)) {
      const auto& p = feature.location();
      std::cout << "Found feature " << feature.name() << " at " << ToString(p) << std::endl;
      bool inside = p.latitude() >= rect.lo().latitude() && p.latitude() <= rect.hi().latitude() &&
                    p.longitude() >= rect.lo().longitude() &&
                    p.longitude() <= rect.hi().longitude();
      int row = (p.latitude() - kOriginLatitude) / kSpacing;
      int col = (p.longitude() - kOriginLongitude) / kSpacing;
      Check(inside, "feature " + feature.name() + " outside the rectangle");
      Check(feature.name() == GridName(row, col), "feature " + feature.name() + " misnamed");
      Check(names.insert(feature.name()).second, "feature " + feature.name() + " sent twice");
    }
    CheckStatus(reader->Finish(), "ListFeatures");
    Check(static_cast<int>(names.size()) == expected,
          "ListFeatures: got " + std::to_string(names.size()) + " features, expected " +
              std::to_string(expected));
  }

  void RecordRoute() {
    std::cout << "-- RecordRoute" << std::endl;
    // A walk along the grid's diagonal, with a point just off the grid (no
    // feature) after every feature.
    std::vector<routeguide::Point> route;
    int features_sent = 0;
    for (int i = 0; i < kGridSize; ++i) {
      route.push_back(GridPoint(i, i));
      ++features_sent;
      route.push_back(MakePoint(GridPoint(i, i).latitude() + kSpacing / 2,
                                GridPoint(i, i).longitude() + kSpacing / 3));
    }
    double distance = 0.0;
    for (size_t i = 1; i < route.size(); ++i) distance += Distance(route[i - 1], route[i]);

    grpc::ClientContext context;
    SetDeadline(&context);
    routeguide::RouteSummary summary;
    auto writer = stub_->RecordRoute(&context, &summary);
    for (const auto& p : route) {
      if (!writer->Write(p)) break;  // the stream broke; Finish() says why
    }
    writer->WritesDone();
    if (!CheckStatus(writer->Finish(), "RecordRoute")) return;
    std::cout << "Finished trip with " << summary.point_count() << " points, passed "
              << summary.feature_count() << " features, travelled " << summary.distance()
              << " metres, took " << summary.elapsed_time() << " seconds" << std::endl;
    Check(summary.point_count() == static_cast<int>(route.size()),
          "RecordRoute: point_count " + std::to_string(summary.point_count()) + ", sent " +
              std::to_string(route.size()));
    Check(summary.feature_count() == features_sent,
          "RecordRoute: feature_count " + std::to_string(summary.feature_count()) + ", expected " +
              std::to_string(features_sent));
    // The server truncates its sum to whole metres.
    Check(std::abs(summary.distance() - static_cast<int>(distance)) <= 1,
          "RecordRoute: distance " + std::to_string(summary.distance()) + ", expected " +
              std::to_string(static_cast<int>(distance)));
  }

  void RouteChat() {
    std::cout << "-- RouteChat" << std::endl;
    // Notes at two points, alternating: the server answers each note with the
    // earlier notes at the same point.
    std::vector<routeguide::RouteNote> notes;
    const char* messages[] = {"First message", "Second message", "Third message", "Fourth message",
                              "Fifth message"};
    for (int i = 0; i < 5; ++i) {
      routeguide::RouteNote n;
      *n.mutable_location() = i % 2 == 0 ? GridPoint(0, 0) : GridPoint(0, 1);
      n.set_message(messages[i]);
      notes.push_back(n);
    }
    // Answers to notes 3, 4, 5: {1}, {2}, {1, 3}.
    const std::vector<std::string> expected = {"First message", "Second message", "First message",
                                               "Third message"};

    grpc::ClientContext context;
    SetDeadline(&context);
    auto stream = stub_->RouteChat(&context);
    std::mutex print_mu;  // the writer thread and this one both print
    std::thread writer([&] {
      for (const auto& n : notes) {
        {
          std::lock_guard<std::mutex> lock(print_mu);
          std::cout << "Sending message " << n.message() << " at " << ToString(n.location())
                    << std::endl;
        }
        if (!stream->Write(n)) break;
      }
      stream->WritesDone();
    });
    std::vector<std::string> got;
    routeguide::RouteNote note;
    while (stream->Read(&note)) {
      std::lock_guard<std::mutex> lock(print_mu);
      std::cout << "Got message " << note.message() << " at " << ToString(note.location())
                << std::endl;
      got.push_back(note.message());
    }
    writer.join();
    CheckStatus(stream->Finish(), "RouteChat");
    Check(got == expected, "RouteChat: got " + std::to_string(got.size()) + " notes, expected " +
                               std::to_string(expected.size()) + " in a fixed order");
  }

 private:
  static void SetDeadline(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  void CheckFeatureAt(const routeguide::Point& point, const std::string& expected_name) {
    grpc::ClientContext context;
    SetDeadline(&context);
    routeguide::Feature feature;
    if (!CheckStatus(stub_->GetFeature(&context, point, &feature), "GetFeature")) return;
    if (feature.name().empty()) {
      std::cout << "Found no feature at " << ToString(point) << std::endl;
    } else {
      std::cout << "Found feature called " << feature.name() << " at " << ToString(point)
                << std::endl;
    }
    Check(feature.name() == expected_name,
          "GetFeature: got \"" + feature.name() + "\", expected \"" + expected_name + "\"");
    Check(feature.location().latitude() == point.latitude() &&
              feature.location().longitude() == point.longitude(),
          "GetFeature: location differs from the point asked for");
  }

  bool CheckStatus(const grpc::Status& status, const std::string& rpc) {
    if (status.ok()) return true;
    std::cerr << rpc << " failed: " << status.error_code() << ": " << status.error_message()
              << std::endl;
    ++failures_;
    return false;
  }

  void Check(bool ok, const std::string& what) {
    if (ok) return;
    std::cerr << "WRONG: " << what << std::endl;
    ++failures_;
  }

  std::unique_ptr<routeguide::RouteGuide::Stub> stub_;
  int failures_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string target = argc > 1 ? argv[1] : "shm:///tmp/route_guide.sock";
  // Over TCP this line reads:
  //   grpc::CreateChannel("localhost:50051", grpc::InsecureChannelCredentials());
  RouteGuideClient guide(grpc::CreateChannel(target, grpc_shm::ChannelCredentials()));
  guide.GetFeature();
  guide.ListFeatures();
  guide.RecordRoute();
  guide.RouteChat();
  if (guide.failures() > 0) {
    std::cerr << guide.failures() << " check(s) failed" << std::endl;
    return 1;
  }
  std::cout << "All RPCs returned the expected results" << std::endl;
  return 0;
}
